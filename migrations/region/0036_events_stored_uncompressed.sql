-- Event payloads are stored as written, not compressed. A settlement event's payload (about 2.3 KB
-- of JSON) passed the 2 KB TOAST threshold, and compressing it with pglz was half of what COPY cost
-- the server a row: 600,000 events of a settled month into a copy of this table, all indexes kept,
-- about 17 -> 8 µs a row; 200,000 claims settled with two workers, 34.7 and 33.8 s -> 30.4 and
-- 31.3 s, alternated. The table is about half as large again (docs/performance.md). A row is
-- compressed only past 8,160 bytes, the most a page holds, and stays in the table (STORAGE MAIN).
-- Rows written before this migration keep their compressed payloads; reads do not tell them apart.
ALTER TABLE events SET (toast_tuple_target = 8160);
ALTER TABLE events ALTER COLUMN state SET STORAGE MAIN;
