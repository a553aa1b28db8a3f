{#- The months a run rebuilds, from the var `months`: a list, or a comma-separated string, of
    first days (2020-10-01) or YYYY-MM. Anything else fails the run: the values go into SQL. -#}
{% macro selected_months() %}
  {%- set raw = var('months', '') -%}
  {%- set items = raw.split(',') if raw is string else raw -%}
  {%- set months = [] -%}
  {%- for item in items -%}
    {%- set text = (item | string).strip() -%}
    {%- if text -%}
      {%- set found = modules.re.match('^(\\d{4})-(0[1-9]|1[0-2])(-01)?$', text) -%}
      {%- if not found -%}
        {{ exceptions.raise_compiler_error("var months: " ~ text ~ " is not a month (YYYY-MM or YYYY-MM-01)") }}
      {%- endif -%}
      {%- do months.append(found.group(1) ~ '-' ~ found.group(2) ~ '-01') -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(months | unique | sort | list) }}
{% endmacro %}

{#- A condition keeping the rows of the selected months (every row when none is selected). -#}
{% macro in_selected_months(column='source_month') %}
  {%- set months = selected_months() -%}
  {%- if months -%}
    {{ column }} in ({% for month in months %}cast('{{ month }}' as date){{ ', ' if not loop.last }}{% endfor %})
  {%- else -%}
    true
  {%- endif -%}
{% endmacro %}

{#- How an incremental model replaces months: on Postgres delete+insert keyed on the month column
    (the delete is `where month in (months of the new rows)`), on BigQuery insert_overwrite of the
    month partitions named by the var (all the new rows' partitions when no month is named). -#}
{% macro month_incremental_config(month_column, cluster_by) %}
  {%- if target.type == 'bigquery' -%}
    {%- set partitions = [] -%}
    {%- for month in selected_months() -%}
      {%- do partitions.append("date '" ~ month ~ "'") -%}
    {%- endfor -%}
    {{ return({
        'incremental_strategy': 'insert_overwrite',
        'partition_by': {'field': month_column, 'data_type': 'date', 'granularity': 'month'},
        'partitions': partitions if partitions else none,
        'cluster_by': cluster_by,
    }) }}
  {%- else -%}
    {{ return({
        'incremental_strategy': 'delete+insert',
        'unique_key': month_column,
        'indexes': [{'columns': [month_column]}],
    }) }}
  {%- endif -%}
{% endmacro %}
