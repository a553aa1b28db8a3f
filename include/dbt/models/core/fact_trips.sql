-- Yellow and green trips whose pickup and drop-off zones are both known, with their zone and
-- borough names. Incremental by month: a run replaces only the months it is given (var months).
{{ config(**month_incremental_config('source_month', ['pickup_location_id', 'dropoff_location_id'])) }}

{#- The union of the families' columns: a family without one (green's trip_type, yellow's
    airport_fee) gets NULLs of the column's type. -#}
{%- set trip_columns = [
    ('vendor_id', dbt.type_bigint()),
    ('pickup_datetime', dbt.type_timestamp()),
    ('dropoff_datetime', dbt.type_timestamp()),
    ('store_and_fwd_flag', dbt.type_string()),
    ('rate_code_id', dbt.type_bigint()),
    ('pickup_location_id', dbt.type_bigint()),
    ('dropoff_location_id', dbt.type_bigint()),
    ('passenger_count', dbt.type_bigint()),
    ('trip_distance', dbt.type_float()),
    ('fare_amount', dbt.type_float()),
    ('extra', dbt.type_float()),
    ('mta_tax', dbt.type_float()),
    ('tip_amount', dbt.type_float()),
    ('tolls_amount', dbt.type_float()),
    ('ehail_fee', dbt.type_float()),
    ('improvement_surcharge', dbt.type_float()),
    ('total_amount', dbt.type_float()),
    ('congestion_surcharge', dbt.type_float()),
    ('airport_fee', dbt.type_float()),
    ('cbd_congestion_fee', dbt.type_float()),
    ('payment_type', dbt.type_bigint()),
    ('trip_type', dbt.type_bigint()),
] -%}

with trips as (
{%- for family in ['yellow', 'green'] %}
    {%- set staging = ref('stg_' ~ family ~ '_tripdata') %}
    {%- set present = (adapter.get_columns_in_relation(staging) | map(attribute='name') | map('lower') | list) if execute else [] %}
    select
        trip_id,
        service_type,
        source_month,
    {%- for name, type in trip_columns %}
        {{ name if name in present else 'cast(null as ' ~ type ~ ')' }} as {{ name }}{{ ',' if not loop.last }}
    {%- endfor %}
    from {{ staging }}
    where {{ in_selected_months('source_month') }}
    {{ 'union all' if not loop.last }}
{%- endfor %}
),

zones as (
    select * from {{ ref('dim_zones') }}
    where borough <> 'Unknown'
)

select
    trips.trip_id,
    trips.service_type,
    trips.source_month,
    trips.vendor_id,
    trips.pickup_datetime,
    trips.dropoff_datetime,
    trips.pickup_location_id,
    pickup_zone.borough as pickup_borough,
    pickup_zone.zone as pickup_zone,
    trips.dropoff_location_id,
    dropoff_zone.borough as dropoff_borough,
    dropoff_zone.zone as dropoff_zone,
    trips.store_and_fwd_flag,
    trips.rate_code_id,
    trips.passenger_count,
    trips.trip_distance,
    trips.fare_amount,
    trips.extra,
    trips.mta_tax,
    trips.tip_amount,
    trips.tolls_amount,
    trips.ehail_fee,
    trips.improvement_surcharge,
    trips.total_amount,
    trips.congestion_surcharge,
    trips.airport_fee,
    trips.cbd_congestion_fee,
    trips.payment_type,
    trips.trip_type
from trips
inner join zones as pickup_zone on trips.pickup_location_id = pickup_zone.location_id
inner join zones as dropoff_zone on trips.dropoff_location_id = dropoff_zone.location_id
