-- Each landed batch's manifest: its interval, the earliest event time it may hold (the
-- interval start less the declared max_lateness: late data is valid) and the field its
-- contract version adds, if any.
{{ config(materialized='table') }}
SELECT m ->> 'batch_id' AS batch_id, m ->> 'stream' AS stream,
       (m ->> 'interval_end')::TIMESTAMPTZ AS interval_end,
       (m ->> 'interval_start')::TIMESTAMPTZ - to_milliseconds(
           coalesce((m -> 'spec' -> 'arrival' -> 'late' ->> 'max_lateness_ms')::BIGINT, 0))
           AS earliest,
       CASE WHEN coalesce((m ->> 'contract_version')::INTEGER, 1) >= 2
            THEN m -> 'spec' -> 'arrival' -> 'drift' ->> 'field' END AS drift_field
FROM (SELECT content::JSON AS m
      FROM read_text('{{ var("landing") }}/_manifests/*/*.json'))
