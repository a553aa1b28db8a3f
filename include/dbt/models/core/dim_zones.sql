-- The TLC's taxi zones (seeds/taxi_zones.csv, the lookup the TLC publishes), one row per zone.
{{ config(materialized='table') }}

select
    cast(location_id as {{ dbt.type_int() }}) as location_id,
    borough,
    zone,
    replace(service_zone, 'Boro', 'Green') as service_zone
from {{ ref('taxi_zones') }}
