-- Bronze: every line of every landed file, exactly as written, keyed by (batch_id, row_no).
-- JSON Lines line i (1-based) is row_no i-1 (statements are split on semicolons: none here).
-- An empty file (a batch with no records) has no line: splitting '' gives one empty part,
-- which must not become a row.
CREATE OR REPLACE TABLE bronze AS
WITH files AS (
    SELECT filename, string_split(content, chr(10)) AS parts,
           CASE WHEN content = '' THEN len(string_split(content, chr(10)))
                WHEN content LIKE '%' || chr(10) THEN 1 ELSE 0 END AS trail
    FROM read_text($jsonl_files)
),
lines AS (
    SELECT filename, unnest(parts) AS payload, generate_subscripts(parts, 1) AS line,
           len(parts) - trail AS last_line
    FROM files
)
SELECT regexp_extract(filename, '([a-z]+)-[0-9]+\.jsonl$', 1) AS stream,
       regexp_extract(filename, '([a-z]+-[0-9]+)\.jsonl$', 1) AS batch_id,
       (line - 1)::BIGINT AS row_no, payload
FROM lines WHERE line <= last_line;

-- The batch intervals the landing zone's manifests give (boundary checks need them). With
-- arrival conditions a record may lie up to the declared max_lateness before its interval
-- (late data is valid: `earliest`), and contract version 2 adds an optional field.
CREATE OR REPLACE TABLE batches AS
SELECT m ->> 'batch_id' AS batch_id, m ->> 'stream' AS stream,
       (m ->> 'interval_start')::TIMESTAMPTZ AS interval_start,
       (m ->> 'interval_end')::TIMESTAMPTZ AS interval_end,
       (m ->> 'interval_start')::TIMESTAMPTZ - to_milliseconds(
           coalesce((m -> 'spec' -> 'arrival' -> 'late' ->> 'max_lateness_ms')::BIGINT, 0))
           AS earliest,
       CASE WHEN coalesce((m ->> 'contract_version')::INTEGER, 1) >= 2
            THEN m -> 'spec' -> 'arrival' -> 'drift' ->> 'field' END AS drift_field
FROM (SELECT content::JSON AS m FROM read_text($manifest_files));
