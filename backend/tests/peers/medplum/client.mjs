// Drives Intake's FHIR API with Medplum's own client (@medplum/core's MedplumClient,
// the version the peer server uses): nobody here wrote it, so it finds what a clinic's
// integration would. Usage:
//   INTAKE_ORIGIN=http://127.0.0.1:PORT INTAKE_TOKEN=… node client.mjs
// Prints `ok STEP` for each step and exits 0; the first error is printed and exits 1.
globalThis.WebSocket ??= { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 };
const { MedplumClient } = await import('@medplum/core');

const origin = process.env.INTAKE_ORIGIN;
const medplum = new MedplumClient({
  baseUrl: origin + '/',
  fhirUrlPath: 'fhir',
  cacheTime: 0,
  fetch: (url, init) => fetch(url, init),
});
medplum.setAccessToken(process.env.INTAKE_TOKEN);

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function step(name, run) {
  try {
    await run();
    console.log(`ok ${name}`);
  } catch (e) {
    console.error(`FAILED ${name}: ${e?.message ?? e} ${JSON.stringify(e?.outcome ?? '')}`);
    process.exit(1);
  }
}

const family = 'Medplumclient';
let ana;

await step('create', async () => {
  ana = await medplum.createResource({
    resourceType: 'Patient',
    name: [{ family, given: ['Ana'] }],
    birthDate: '1980-03-27',
    identifier: [{ system: 'urn:test', value: 'mc-1' }],
  });
  check(ana.id && ana.meta?.versionId === '1', 'created without id and version');
  for (let i = 0; i < 4; i++) {
    await medplum.createResource({
      resourceType: 'Patient',
      name: [{ family, given: [`P${i}`] }],
      birthDate: `199${i}-01-01`,
    });
  }
});

await step('search with paging to the end', async () => {
  const seen = [];
  for await (const page of medplum.searchResourcePages('Patient', { family, _count: '2', _sort: 'birthdate' })) {
    seen.push(...page);
    check(seen.length <= 5, 'paging does not end');
  }
  check(seen.length === 5, `paged through ${seen.length} of 5`);
  check(new Set(seen.map((p) => p.id)).size === 5, 'a patient came twice');
  const bundle = await medplum.search('Patient', { family, _summary: 'count' });
  check(bundle.total === 5 && !bundle.entry, `_summary=count gave ${JSON.stringify(bundle)}`);
});

await step('conditional create', async () => {
  const again = await medplum.createResourceIfNoneExist(
    { resourceType: 'Patient', name: [{ family, given: ['Ana'] }], identifier: [{ system: 'urn:test', value: 'mc-1' }] },
    'identifier=urn:test|mc-1'
  );
  check(again.id === ana.id, 'the conditional create made another patient');
});

await step('update with If-Match', async () => {
  const updated = await medplum.updateResource(
    { ...ana, gender: 'female' },
    { headers: { 'If-Match': `W/"${ana.meta.versionId}"` } }
  );
  check(updated.meta.versionId === '2', 'not version 2');
  let refused;
  try {
    await medplum.updateResource({ ...ana, gender: 'other' }, { headers: { 'If-Match': 'W/"1"' } });
  } catch (e) {
    refused = e;
  }
  check(refused, 'a stale If-Match was accepted');
  const current = await medplum.readResource('Patient', ana.id);
  check(current.gender === 'female', 'the stale update was written');
});

await step('batch with GET entries', async () => {
  const answer = await medplum.executeBatch({
    resourceType: 'Bundle',
    type: 'batch',
    entry: [
      { request: { method: 'GET', url: `Patient/${ana.id}` } },
      { request: { method: 'GET', url: `Patient?family=${family}&_count=1` } },
      { resource: { resourceType: 'Patient', name: [{ family, given: ['Batch'] }] }, request: { method: 'POST', url: 'Patient' } },
    ],
  });
  check(answer.type === 'batch-response', 'not a batch-response');
  check(answer.entry[0].resource?.id === ana.id, 'the read entry has no patient');
  check(answer.entry[1].resource?.total >= 5, 'the search entry has no total');
  check(answer.entry[2].response.status.startsWith('201'), 'the create entry failed');
});

await step('transaction', async () => {
  const answer = await medplum.executeBatch({
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: 'urn:uuid:0b0c3a4e-6a0f-4c57-9f4e-000000000001',
        resource: { resourceType: 'Patient', name: [{ family, given: ['Tx'] }] },
        request: { method: 'POST', url: 'Patient' },
      },
      {
        resource: {
          resourceType: 'Task',
          status: 'requested',
          intent: 'order',
          focus: { reference: 'urn:uuid:0b0c3a4e-6a0f-4c57-9f4e-000000000001' },
        },
        request: { method: 'POST', url: 'Task' },
      },
    ],
  });
  check(answer.type === 'transaction-response', 'not a transaction-response');
  const patient = answer.entry[0].resource;
  check(patient?.resourceType === 'Patient', 'no Patient in the answer');
  check(answer.entry[1].resource?.focus?.reference === `Patient/${patient.id}`, 'the reference was not resolved');
});
