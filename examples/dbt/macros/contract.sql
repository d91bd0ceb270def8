{#- emugen's data contract for events, as one SQL predicate over the raw JSON `j`: true when
    the record is valid (every field present and well typed, no unknown field but the one a
    contract version 2 batch adds, a location that is null or {lat, lon} on Earth). The batch
    interval and the company reference are checked in silver_events. -#}

{% macro uuid_ok(j, field) -%}
  (json_type({{ j }}, '$.{{ field }}') = 'VARCHAR' AND regexp_full_match(
     json_extract_string({{ j }}, '$.{{ field }}'),
     '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'))
{%- endmacro %}

{% macro event_is_valid(j, drift_field) -%}
  {%- set names = ['event_id', 'company_id', 'driver_id', 'truck_id', 'event_type',
                   'event_timestamp', 'location'] -%}
  {%- set listed = "['" ~ names | join("', '") ~ "']" -%}
  {%- set stamp = "json_extract_string(" ~ j ~ ", '$.event_timestamp')" -%}
  {%- set lat = "json_extract(" ~ j ~ ", '$.location.lat')" -%}
  {%- set lon = "json_extract(" ~ j ~ ", '$.location.lon')" -%}
  coalesce(
    json_type({{ j }}) = 'OBJECT'
    AND len(list_filter(json_keys({{ j }}), lambda k: NOT list_contains({{ listed }}, k)
                        AND k IS DISTINCT FROM {{ drift_field }})) = 0
    AND len(list_filter({{ listed }}, lambda n: NOT list_contains(json_keys({{ j }}), n))) = 0
    {% for field in ['event_id', 'company_id', 'driver_id', 'truck_id'] -%}
    AND {{ uuid_ok(j, field) }}
    {% endfor -%}
    AND json_type({{ j }}, '$.event_type') = 'VARCHAR'
    AND json_extract_string({{ j }}, '$.event_type') IN ('start_driving', 'stopped_driving',
                                                          'delivered')
    AND json_type({{ j }}, '$.event_timestamp') = 'VARCHAR'
    AND regexp_full_match({{ stamp }}, '\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z')
    AND try_cast(replace({{ stamp }}, 'Z', '+00:00') AS TIMESTAMPTZ) IS NOT NULL
    AND (json_type({{ j }}, '$.location') = 'NULL'
         OR (json_type({{ j }}, '$.location') = 'OBJECT'
             AND list_sort(json_keys({{ j }}, '$.location')) = ['lat', 'lon']
             AND json_type({{ lat }}) IN ('BIGINT', 'UBIGINT', 'DOUBLE')
             AND json_type({{ lon }}) IN ('BIGINT', 'UBIGINT', 'DOUBLE')
             AND {{ lat }}::DOUBLE BETWEEN -90 AND 90
             AND {{ lon }}::DOUBLE BETWEEN -180 AND 180)),
    false)
{%- endmacro %}
