"""The PostgreSQL endpoint as Python clients see it (run by tests/e2e/pg.rs).

usage: clients.py psycopg|grafana PORT PASSWORD SERVICE
Prints one JSON object: what the clients got, for the Rust test to compare with `doracost sql`.
"""
import datetime
import json
import sys

import psycopg
import psycopg2

mode, port, password, service = sys.argv[1:5]
dsn = f"host=127.0.0.1 port={port} dbname=doracost user=doracost password={password} sslmode=disable"
MONTHLY = (
    "SELECT name, period_start, deployments FROM dora_monthly "
    "WHERE scope = 'service' AND name = %s ORDER BY period_start"
)


def rows(fetched):
    return [[name, start.isoformat(), deployments] for name, start, deployments in fetched]


def psycopg_clients():
    out = {}
    # psycopg 3: the extended protocol, parameters bound as values; from the 6th execution of
    # the same query (prepare_threshold = 5) a named prepared statement.
    with psycopg.connect(dsn) as conn:
        runs = []
        for _ in range(7):
            with conn.cursor() as cur:
                cur.execute(MONTHLY, (service,))
                runs.append(cur.fetchall())
        out["same_every_time"] = all(run == runs[0] for run in runs)
        out["prepared"] = conn.prepare_threshold is not None
        out["psycopg3"] = rows(runs[0])
        with conn.cursor() as cur:
            cur.execute("SELECT max(finished_at) FROM deployments WHERE service = %s", (service,))
            (latest,) = cur.fetchone()
        out["aware"] = latest.tzinfo is not None
        out["latest"] = latest.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        with conn.cursor() as cur:
            cur.execute(
                "SELECT sum(cost) AS cost FROM cost_allocated WHERE service = %s", (service,)
            )
            (cost,) = cur.fetchone()
        out["cost_type"] = type(cost).__name__
        out["cost"] = str(cost)
        conn.rollback()
        out["after_rollback"] = conn.info.transaction_status.name
        out["one"] = conn.execute("SELECT 1").fetchone()[0]
        (interval, array) = conn.execute(
            "SELECT INTERVAL '90 minutes', make_array('a', 'b')"
        ).fetchone()
        out["interval_minutes"] = interval / datetime.timedelta(minutes=1)
        out["array"] = array
        try:
            conn.execute("DROP VIEW dora_monthly")
            out["drop"] = "ran"
        except psycopg.Error as e:
            out["drop"] = e.sqlstate
            conn.rollback()
        out["still_answers"] = conn.execute("SELECT count(*) FROM dora_monthly").fetchone()[0] > 0
    # psycopg 2: the simple protocol, parameters interpolated by the client.
    conn2 = psycopg2.connect(dsn)
    try:
        cur = conn2.cursor()
        cur.execute(MONTHLY, (service,))
        out["psycopg2"] = rows(cur.fetchall())
        conn2.rollback()
    finally:
        conn2.close()
    return out


# Grafana's PostgreSQL data source (public/app/plugins/datasource/grafana-postgresql-datasource/
# postgresMetaQuery.ts): its version probe, schema, table and column pickers, as it sends them.
SEARCH_PATH_SCHEMAS = """
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )"""
GRAFANA = {
    "version": "SELECT current_setting('server_version_num')::int/100 as version",
    "schemas": """SELECT schema_name AS "name"
    FROM information_schema.schemata
    WHERE schema_name NOT IN ('information_schema',
                              'pg_catalog',
                              'pg_toast',
                              '_timescaledb_cache',
                              '_timescaledb_catalog',
                              '_timescaledb_internal',
                              '_timescaledb_config',
                              'timescaledb_information',
                              'timescaledb_experimental')
    ORDER BY schema_name""",
    "tables": f"""SELECT
    CASE WHEN {SEARCH_PATH_SCHEMAS}
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS "table"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema',
                             'pg_catalog',
                             '_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental')
    ORDER BY CASE WHEN {SEARCH_PATH_SCHEMAS} THEN 0 ELSE 1 END, 1""",
    "tables_in_public": """SELECT quote_ident(table_name) AS "table"
      FROM information_schema.tables
      WHERE quote_ident(table_schema) = 'public'
      ORDER BY 1""",
    "columns": f"""SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('public.dora_monthly'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('public.dora_monthly'))[1]
          AND quote_ident(table_name) = (parse_ident('public.dora_monthly'))[2]
        ELSE quote_ident(table_name) = 'public.dora_monthly'
          AND {SEARCH_PATH_SCHEMAS}
      END""",
    # Grafana's older query builder (meta_query.ts) finds time columns by `udt_name`.
    "time_columns": """SELECT quote_ident(column_name) AS "column"
    FROM information_schema.columns
    WHERE quote_ident(table_name) = 'deployments'
      AND udt_name IN ('timestamptz', 'timestamp')
    ORDER BY ordinal_position""",
}


def grafana():
    out = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, sql in GRAFANA.items():
            out[name] = [list(map(str, row)) for row in conn.execute(sql).fetchall()]
        # Grafana's health check: `-- ping`, over the simple protocol.
        out["ping"] = psycopg.pq.ExecStatus(conn.pgconn.exec_(b"-- ping").status).name
    return out


print(json.dumps(psycopg_clients() if mode == "psycopg" else grafana()))
