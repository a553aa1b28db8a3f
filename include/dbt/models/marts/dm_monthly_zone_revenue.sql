-- Revenue per pickup zone, month of pickup and service type (the course's monthly zone revenue).
-- A trip counts in its month of pickup when that is its file's month: the few trips a file
-- holds from another month (clock errors, a trip across midnight at a month's end) stay in
-- fact_trips but not here, so that a month's rows here come from one file only and a month
-- published again replaces exactly its own rows.
{{ config(**month_incremental_config('revenue_month', ['pickup_location_id'])) }}

select
    pickup_location_id,
    pickup_zone as revenue_zone,
    pickup_borough as revenue_borough,
    source_month as revenue_month,
    service_type,
    count(*) as trips,
    sum(fare_amount) as revenue_monthly_fare,
    sum(extra) as revenue_monthly_extra,
    sum(mta_tax) as revenue_monthly_mta_tax,
    sum(tip_amount) as revenue_monthly_tip_amount,
    sum(tolls_amount) as revenue_monthly_tolls_amount,
    sum(improvement_surcharge) as revenue_monthly_improvement_surcharge,
    sum(congestion_surcharge) as revenue_monthly_congestion_surcharge,
    sum(total_amount) as revenue_monthly_total_amount,
    avg(passenger_count) as avg_monthly_passenger_count,
    avg(trip_distance) as avg_monthly_trip_distance
from {{ ref('fact_trips') }}
where {{ in_selected_months('source_month') }}
    and cast({{ dbt.date_trunc('month', 'pickup_datetime') }} as date) = source_month
group by pickup_location_id, pickup_zone, pickup_borough, source_month, service_type
