-- Valid events of the files not read before: the contract, the batch interval widened by the
-- declared lateness, a known company, and each event_id once (a redelivered copy, the same
-- event in a later file, is dropped here: silver already holds it).
{{ config(materialized='incremental', incremental_strategy='append') }}
WITH raw AS (
    SELECT filename AS source_file, json AS j,
           regexp_extract(filename, '(events-[0-9]+)\.jsonl$', 1) AS batch_id
    FROM read_json_objects('{{ var("landing") }}/events/*/*/*.jsonl',
                           format = 'newline_delimited', filename = true, ignore_errors = true)
{% if is_incremental() %}
    WHERE filename NOT IN (SELECT DISTINCT source_file FROM {{ this }})
{% endif %}
),
typed AS (
    SELECT r.source_file, r.batch_id, r.j ->> 'event_id' AS event_id,
           r.j ->> 'company_id' AS company_id, r.j ->> 'driver_id' AS driver_id,
           r.j ->> 'event_type' AS event_type,
           try_cast(replace(r.j ->> 'event_timestamp', 'Z', '+00:00') AS TIMESTAMPTZ)
               AS event_timestamp,
           {{ event_is_valid('r.j', 'b.drift_field') }} AS valid, b.earliest, b.interval_end
    FROM raw r JOIN {{ ref('stg_batches') }} b USING (batch_id)
)
SELECT source_file, batch_id, event_id, company_id, driver_id, event_type, event_timestamp,
       to_timestamp(epoch_ms(event_timestamp) // ({{ var('window_seconds') }} * 1000)
                    * {{ var('window_seconds') }}) AS window_start
FROM typed
WHERE valid AND event_timestamp >= earliest AND event_timestamp < interval_end
  AND company_id IN (SELECT company_id FROM {{ ref('silver_companies') }})
{% if is_incremental() %}
  AND event_id NOT IN (SELECT event_id FROM {{ this }})
{% endif %}
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY source_file) = 1
