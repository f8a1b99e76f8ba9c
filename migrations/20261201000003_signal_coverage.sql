-- A prospect's coverage (revision 2): the share of the profile score's points whose
-- signals a source told; below `layers.prospecting.min_coverage` the prospect needs data
-- (`lead_class = 'needs_data'`). Prospects found before were scored as if every signal
-- were known.
ALTER TABLE prospects ADD COLUMN coverage DOUBLE PRECISION NOT NULL DEFAULT 1;
