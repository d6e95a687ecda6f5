-- The embedded FHIR store: the current version of each resource, every version
-- kept, and the compiled form of each Questionnaire (made once, at import).
CREATE TABLE resource (
    resource_type TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    version_id    INTEGER NOT NULL,
    last_updated  TEXT    NOT NULL,
    -- Canonical URL of definitional resources (Questionnaire.url), for ?url= searches.
    url           TEXT,
    -- The resource as FHIR JSON, id and meta included.
    body          TEXT    NOT NULL,
    PRIMARY KEY (resource_type, id)
) STRICT;

CREATE INDEX resource_by_url ON resource (resource_type, url) WHERE url IS NOT NULL;

CREATE TABLE resource_version (
    resource_type TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    version_id    INTEGER NOT NULL,
    last_updated  TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    PRIMARY KEY (resource_type, id, version_id)
) STRICT;

CREATE TABLE compiled_form (
    questionnaire_id TEXT    PRIMARY KEY,
    version_id       INTEGER NOT NULL,
    -- shared::form::CompiledForm as JSON.
    body             TEXT    NOT NULL
) STRICT;
