{#- Every model and seed goes into the warehouse schema of the trips they read (the Variable
    pg_schema or bq_dataset, passed as NYC_TAXI_SCHEMA), never a "<target>_<custom>" schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {{ env_var('NYC_TAXI_SCHEMA', target.schema) | trim }}
{%- endmacro %}
