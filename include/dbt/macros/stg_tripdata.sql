{#- The staging model of one file family: `{{ stg_tripdata('fhvhv') }}` is the whole model.

    The loaded table `{family}_tripdata` already has the declared types of include/source/families.py;
    staging renames its columns to one vocabulary (vocabulary_name), adds the family as
    `service_type` and a surrogate `trip_id`.

    trip_id: the raw files contain exact duplicate rows, so no column set is a key. Each row gets
    a hash of all its columns (row_hash); identical rows of one month share it, and are told
    apart by their row number among themselves (copy_number: 1, 2, ...). The hash of service
    type, month, row hash and copy number is then unique per trip and stable across rebuilds
    (identical rows are interchangeable, so which one is copy 1 does not matter). -#}
{% macro stg_tripdata(service_type) %}
{%- set relation = source('tlc', service_type ~ '_tripdata') -%}
{%- if execute and load_relation(relation) is none -%}
  {#- Nothing of this family loaded yet (a source that does not publish it, as the course's CSV
      mirror has no fhvhv): an empty model rather than a failed build of every other family. -#}
  {{ log("stg_" ~ service_type ~ "_tripdata: " ~ relation ~ " does not exist yet; the model is empty", info=true) }}
  {{ return(empty_trips(service_type)) }}
{%- endif -%}
{%- set columns = adapter.get_columns_in_relation(relation) if execute else [] -%}
{%- set names = columns | map(attribute='name') | map('lower') | list -%}
with source as (
    select * from {{ relation }}
),

hashed as (
    select
        *,
        {{ row_hash(names) }} as row_hash
    from source
),

numbered as (
    select
        *,
        row_number() over (partition by source_month, row_hash order by row_hash) as copy_number
    from hashed
)

select
    {{ dbt.hash(dbt.concat(["'" ~ service_type ~ "'", "'|'", dbt.safe_cast('source_month', dbt.type_string()), "'|'", 'row_hash', "'|'", dbt.safe_cast('copy_number', dbt.type_string())])) }} as trip_id,
    '{{ service_type }}' as service_type,
{%- for name in names %}
    {{ adapter.quote(name) }} as {{ vocabulary_name(name) }},
{%- endfor %}
    row_hash
from numbered
{% endmacro %}

{#- A staging model with no rows: the columns every family's model has, typed. -#}
{% macro empty_trips(service_type) %}
select
    cast(null as {{ dbt.type_string() }}) as trip_id,
    '{{ service_type }}' as service_type,
    cast(null as date) as source_month,
    cast(null as {{ dbt.type_timestamp() }}) as pickup_datetime,
    cast(null as {{ dbt.type_string() }}) as row_hash
limit 0
{% endmacro %}

{#- One name per meaning across families: the TLC's tpep_/lpep_ time prefixes go, the zone ids
    say what they are. -#}
{% macro vocabulary_name(name) %}
  {%- set renamed = {
      'pu_location_id': 'pickup_location_id',
      'do_location_id': 'dropoff_location_id',
      'ratecode_id': 'rate_code_id',
  } -%}
  {%- if name in renamed -%}
    {{ return(renamed[name]) }}
  {%- elif name.startswith('tpep_') or name.startswith('lpep_') -%}
    {{ return(name[5:]) }}
  {%- else -%}
    {{ return(name) }}
  {%- endif -%}
{% endmacro %}

{#- A hash of every column's value as text, with a marker for NULL so ('a', NULL) and (NULL, 'a')
    differ. -#}
{% macro row_hash(names) %}
  {%- set parts = [] -%}
  {%- for name in names -%}
    {%- do parts.append("coalesce(" ~ dbt.safe_cast(adapter.quote(name), dbt.type_string()) ~ ", '<NULL>')") -%}
    {%- if not loop.last %}{% do parts.append("'|'") %}{% endif -%}
  {%- endfor -%}
  {{ dbt.hash(dbt.concat(parts)) if parts else "''" }}
{% endmacro %}
