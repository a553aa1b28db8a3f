{#- Reconciliation: the model has as many rows as the loaded table in every month of the run
    (every month when the run names none). Fails with one row per month that differs. -#}
{% test row_count_per_month_matches(model, loaded, month_column='source_month') %}
with expected as (
{%- if execute and load_relation(loaded) is none %}
    {#- A family not loaded yet has no rows to reconcile (macros/stg_tripdata.sql). #}
    select cast(null as date) as month, 0 as rows_loaded
    limit 0
{%- else %}
    select {{ month_column }} as month, count(*) as rows_loaded
    from {{ loaded }}
    where {{ in_selected_months(month_column) }}
    group by {{ month_column }}
{%- endif %}
),

actual as (
    select {{ month_column }} as month, count(*) as rows_modelled
    from {{ model }}
    where {{ in_selected_months(month_column) }}
    group by {{ month_column }}
)

select
    coalesce(expected.month, actual.month) as month,
    coalesce(rows_loaded, 0) as rows_loaded,
    coalesce(rows_modelled, 0) as rows_modelled
from expected
full outer join actual on expected.month = actual.month
where coalesce(rows_loaded, 0) <> coalesce(rows_modelled, 0)
{% endtest %}
