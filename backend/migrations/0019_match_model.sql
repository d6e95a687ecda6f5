-- What the matching model learned, kept across restarts: how often each comparison
-- pattern was seen between a query (an intake, a $match) and the candidates its
-- blocking brought, staff decisions as labelled patterns, and the model's version.
-- Level codes and counts: no PHI.
CREATE TABLE match_model (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    queries INTEGER NOT NULL,
    -- JSON: [[pattern, pairs], ...], a pattern being the levels packed 3 bits a field.
    patterns TEXT NOT NULL,
    -- JSON: [[pattern, same, not_same], ...], staff decisions (link: same; not this
    -- patient, or create: not the same).
    labels TEXT NOT NULL
);
