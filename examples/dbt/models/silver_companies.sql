-- The companies events may name: every landed company id (a file is read once).
{{ config(materialized='incremental', incremental_strategy='append') }}
SELECT DISTINCT json ->> 'company_id' AS company_id, filename AS source_file
FROM read_json_objects('{{ var("landing") }}/companies/*/*/*.jsonl',
                       format = 'newline_delimited', filename = true, ignore_errors = true)
WHERE json_type(json) = 'OBJECT'
  AND regexp_full_match(json ->> 'company_id',
                        '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')
{% if is_incremental() %}
  AND filename NOT IN (SELECT source_file FROM {{ this }})
{% endif %}
