"""Drives Intake's FHIR API with fhirpy (PyPI's FHIR client, installed by
`cargo xtask setup` into the virtualenv beside fhir.resources): nobody here wrote
it, so it finds what a clinic's Python integration would. Usage:

    INTAKE_ORIGIN=http://127.0.0.1:PORT INTAKE_TOKEN=... python client.py

Prints `ok STEP` for each step and exits 0; the first error is printed and exits 1.
fhirpy has no Bundle or If-Match API of its own: a batch and a transaction go
through `client.execute("", "post", bundle)` (a POST to the base, `/fhir/`, as
fhirpy joins it), If-Match through a client made with `extra_headers`, and a 412
comes back as fhirpy's `MultipleResourcesFound` (how it maps every 412).
"""

import os
import sys
import traceback

from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound

BASE = os.environ["INTAKE_ORIGIN"] + "/fhir/"
AUTH = "Bearer " + os.environ["INTAKE_TOKEN"]
client = SyncFHIRClient(BASE, authorization=AUTH)
FAMILY = "Fhirpyclient"


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def step(name):
    def run(body):
        try:
            body()
        except Exception as e:  # noqa: BLE001 - any failure fails the step
            print(f"FAILED {name}: {e!r}", file=sys.stderr)
            traceback.print_exc()
            sys.exit(1)
        print(f"ok {name}", flush=True)
        return body

    return run


state = {}


@step("create")
def create():
    ana = client.resource(
        "Patient",
        name=[{"family": FAMILY, "given": ["Ana"]}],
        birthDate="1980-03-27",
        identifier=[{"system": "urn:test", "value": "fp-1"}],
    )
    ana.save()
    check(ana.id and ana.meta.versionId == "1", f"created without id and version: {ana.serialize()}")
    state["ana"] = ana
    for i in range(4):
        client.resource(
            "Patient", name=[{"family": FAMILY, "given": [f"P{i}"]}], birthDate=f"199{i}-01-01"
        ).save()


@step("search with paging to the end")
def search():
    pages = client.resources("Patient").search(family=FAMILY).sort("birthdate").limit(2)
    seen = []
    for patient in pages:  # fhirpy follows each `next` link
        seen.append(patient.id)
        check(len(seen) <= 5, "paging does not end")
    check(len(seen) == 5, f"paged through {len(seen)} of 5")
    check(len(set(seen)) == 5, "a patient came twice")
    # `count()` asks `_count=0&_totalMethod=count`: the total, no entries.
    check(client.resources("Patient").search(family=FAMILY).count() == 5, "count() is not 5")
    births = [p.birthDate for p in client.resources("Patient").search(family=FAMILY).sort("-birthdate").fetch_all()]
    check(births == sorted(births, reverse=True), f"not sorted by -birthdate: {births}")


@step("conditional create")
def conditional_create():
    again = client.resource(
        "Patient",
        name=[{"family": FAMILY, "given": ["Ana"]}],
        identifier=[{"system": "urn:test", "value": "fp-1"}],
    )
    # fhirpy sends the condition as the query string of the POST.
    found, created = client.resources("Patient").search(identifier="urn:test|fp-1").get_or_create(again)
    check(not created, "the conditional create made another patient")
    check(found.id == state["ana"].id, "the conditional create found someone else")
    total = client.resources("Patient").search(identifier="urn:test|fp-1").count()
    check(total == 1, f"{total} patients with the identifier")


@step("update with If-Match")
def update():
    ana = state["ana"]
    version = ana.meta.versionId
    current = SyncFHIRClient(BASE, authorization=AUTH, extra_headers={"If-Match": f'W/"{version}"'})
    mine = current.resource("Patient", **{**ana.serialize(), "gender": "female"})
    mine.update()
    check(mine.meta.versionId == "2", f"not version 2: {mine.serialize()}")
    stale = SyncFHIRClient(BASE, authorization=AUTH, extra_headers={"If-Match": 'W/"1"'})
    theirs = stale.resource("Patient", **{**ana.serialize(), "gender": "other"})
    try:
        theirs.update()
        refused = False
    except MultipleResourcesFound:  # fhirpy's name for any 412
        refused = True
    check(refused, "a stale If-Match was accepted")
    # `refresh()` reads with If-None-Match (a bare version id): current, a 304.
    mine.refresh()
    check(mine.gender == "female", "the stale update was written")
    ana.refresh()
    check(ana.meta.versionId == "2" and ana.gender == "female", "refresh did not read version 2")


@step("batch with GET entries")
def batch():
    ana = state["ana"]
    answer = client.execute(
        "",
        method="post",
        data={
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": f"Patient/{ana.id}"}},
                {"request": {"method": "GET", "url": f"Patient?family={FAMILY}&_count=1"}},
                {
                    "resource": {"resourceType": "Patient", "name": [{"family": FAMILY, "given": ["Batch"]}]},
                    "request": {"method": "POST", "url": "Patient"},
                },
            ],
        },
    )
    check(answer["type"] == "batch-response", "not a batch-response")
    check(answer["entry"][0]["resource"]["id"] == ana.id, "the read entry has no patient")
    check(answer["entry"][1]["resource"]["total"] >= 5, "the search entry has no total")
    check(answer["entry"][2]["response"]["status"].startswith("201"), "the create entry failed")


@step("transaction")
def transaction():
    urn = "urn:uuid:0b0c3a4e-6a0f-4c57-9f4e-0000000000f1"
    answer = client.execute(
        "",
        method="post",
        data={
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": urn,
                    "resource": {"resourceType": "Patient", "name": [{"family": FAMILY, "given": ["Tx"]}]},
                    "request": {"method": "POST", "url": "Patient"},
                },
                {
                    "resource": {
                        "resourceType": "Task",
                        "status": "requested",
                        "intent": "order",
                        "focus": {"reference": urn},
                    },
                    "request": {"method": "POST", "url": "Task"},
                },
            ],
        },
    )
    check(answer["type"] == "transaction-response", "not a transaction-response")
    patient = answer["entry"][0]["resource"]
    check(patient["resourceType"] == "Patient", "no Patient in the answer")
    focus = answer["entry"][1]["resource"]["focus"]["reference"]
    check(focus == f"Patient/{patient['id']}", "the reference was not resolved")
