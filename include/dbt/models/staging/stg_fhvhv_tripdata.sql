-- The High-Volume FHV trips, renamed to the models' vocabulary (macros/stg_tripdata.sql).
{{ stg_tripdata('fhvhv') }}
