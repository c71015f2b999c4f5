"""Analysts' SQL under load (issue 15's benchmark): CLIENTS threads each run QUERY in a loop for
SECONDS, over the PostgreSQL endpoint (psycopg 3, one connection each) and then over HTTP
(`POST /api/v1/sql`, Arrow IPC); then DuckDB runs the same query over a Parquet export of the same
rows in this process, for comparison. Prints queries/s, p50 and p99 latency for each.

    python3 benches/pg_load.py HTTP_PORT PG_PORT PARQUET [CLIENTS] [SECONDS]
"""
import json
import statistics
import sys
import threading
import time
import urllib.request

QUERY = "SELECT * FROM dora_monthly WHERE scope = 'service'"


def run(name, clients, seconds, make_worker):
    latencies = []
    errors = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop():
        try:
            one = make_worker()
        except Exception as e:  # a client that cannot start is an error of the run
            with lock:
                errors.append(repr(e))
            return
        mine = []
        while time.monotonic() < stop:
            started = time.monotonic()
            try:
                one()
            except Exception as e:
                with lock:
                    errors.append(repr(e))
                continue
            mine.append(time.monotonic() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")
    print(json.dumps({
        "name": name, "clients": clients, "seconds": round(elapsed, 1), "queries": len(latencies),
        "queries_per_s": round(len(latencies) / elapsed, 1), "p50_ms": round(p(0.50), 1),
        "p99_ms": round(p(0.99), 1), "errors": len(errors), "first_error": errors[0] if errors else None,
    }))


def main():
    http_port, pg_port, parquet = sys.argv[1], sys.argv[2], sys.argv[3]
    clients = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 30

    import psycopg

    def pg_worker():
        conn = psycopg.connect(f"host=127.0.0.1 port={pg_port} user=doracost dbname=doracost sslmode=disable")

        def one():
            with conn.cursor() as cur:
                cur.execute(QUERY)
                cur.fetchall()
        return one

    def http_worker():
        def one():
            request = urllib.request.Request(
                f"http://127.0.0.1:{http_port}/api/v1/sql", data=QUERY.encode(),
                headers={"Accept": "application/vnd.apache.arrow.stream", "Content-Type": "text/plain"})
            with urllib.request.urlopen(request, timeout=60) as answer:
                answer.read()
        return one

    run("postgresql (psycopg 3)", clients, seconds, pg_worker)
    run("http (Arrow IPC)", clients, seconds, http_worker)
    try:
        import duckdb
    except ImportError:
        print(json.dumps({"name": "duckdb", "skipped": "pip install duckdb"}))
        return

    def duck_worker():
        conn = duckdb.connect()
        conn.execute(f"CREATE VIEW dora_monthly AS SELECT * FROM read_parquet('{parquet}')")

        def one():
            conn.execute(QUERY).fetchall()
        return one

    run("duckdb (same rows, Parquet, in process)", clients, seconds, duck_worker)


if __name__ == "__main__":
    main()
