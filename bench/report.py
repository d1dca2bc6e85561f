"""The report of bench/run.py: results.md rendered from the results, and the targets checked."""

from typing import Any

from loadgen import SCENARIOS

# The targets, checked (and reported, never enforced) at the end: near the HTTP floor, far ahead
# of naive FastAPI and LitServe, a small ready worker that starts fast, no memory growth.
TARGET_VS_FLOOR_64 = 0.25
TARGET_VS_NAIVE_64 = 10.0
TARGET_P50_VS_NAIVE = 0.25
TARGET_VS_NAIVE_TEXTS_32 = 2.5
TARGET_VS_LITSERVE_64 = 3.0
TARGET_READY_MIB = 120
TARGET_START_VS_NOOP = 2.0
TARGET_RSS_GROWTH = 0.10


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def render(report: dict[str, Any]) -> str:
    servers = report["servers"]
    res = report["results"]
    lines = [
        "# Benchmark: ours vs the HTTP floor, a FastAPI no-op, naive FastAPI and LitServe",
        "",
        f"- Date: {report['date']}",
        f"- Command: `{report['command']}`"
        + (" (smoke mode: numbers are not meaningful)" if report["smoke"] else ""),
        f"- Machine: {report['nproc']} CPUs ({report['cpu_model']}), Linux {report['kernel']}, "
        f"Python {report['python']}, torch {report['torch']}, {report['wrk_version']}",
        f"- Pinning: every server on CPU {report['server_cpu']} (`taskset`, own session), "
        f"wrk and the latency probe on CPU {report['client_cpu']}; wrk -t1, "
        f"{report['warmup_s']} s warm-up then {report['duration_s']} s per scenario and server",
        f"- Load average (1/5/15 min) at start: {report['load_start']}; at end: "
        f"{report['load_end']} (a shared machine: other sessions' work competes for the cores)",
        f"- Code: {report['code']}",
        f"- Model: `{report['model_dir']}` ({report['model']})",
        f"- Bodies: {report['bodies']['texts']} review texts from data/rotten_tomatoes.csv, "
        f"shuffled; words per text min {report['bodies']['words_min']}, median "
        f"{report['bodies']['words_median']}, p90 {report['bodies']['words_p90']}, max "
        f"{report['bodies']['words_max']}",
        "- Servers: "
        + "; ".join(f"{s['key']} = `{s['command']}`" for s in servers)
        + f"; access log {'on' if report['access_log'] else 'off'} for all",
        "",
        "req/s and texts/s count 2xx responses only; errors = socket errors + non-2xx responses. "
        "p50/p99 are wrk's, which include its coordinated-omission correction; the 1-connection "
        "scenario also has the client-timed latency of sequential requests (probe).",
        "",
    ]
    for scenario in SCENARIOS:
        rows = res[scenario.key]
        probe = report["probe"] if scenario.connections == 1 else None
        lines += [f"## {scenario.title}", ""]
        header = "| server | req/s | texts/s | p50 ms (wrk) | p99 ms (wrk) | errors |"
        rule = "|---|---:|---:|---:|---:|---:|"
        if probe:
            header += " p50 ms (probe) | p99 ms (probe) |"
            rule += "---:|---:|"
        lines += [header, rule]
        for s in servers:
            r = rows[s["key"]]
            row = (
                f"| {s['title']} | {r['req_s']:,.0f} | {r['texts_s']:,.0f} | {r['p50_ms']:.2f} "
                f"| {r['p99_ms']:.2f} | {r['errors']} |"
            )
            if probe:
                p = probe[s["key"]]
                row += f" {p['p50_ms']:.3f} | {p['p99_ms']:.3f} |"
            lines.append(row)
        ours = rows["ours"]
        summary = "Throughput " + "; ".join(
            f"ours / {key}: **{ratio(ours['texts_s'], rows[key]['texts_s']):.2f}x**"
            for key in ("floor", "noop", "naive", "litserve")
            if key in rows
        )
        if probe:
            p50 = ratio(probe["ours"]["p50_ms"], probe["naive"]["p50_ms"])
            summary += f"; p50 ours / naive (probe): **{p50:.2f}x**"
        lines += ["", summary + "."]
        if "batcher" in ours:
            lines += ["", f"Ours, from its /metrics: {ours['batcher']['text']}."]
        lines.append("")
    lines += [
        "## Server memory (VmRSS of the server's process group)",
        "",
        "| server | after warm-up MiB | after the run MiB | growth |",
        "|---|---:|---:|---:|",
    ]
    for s in servers:
        lines.append(
            f"| {s['title']} | {s['rss_warm_kib'] / 1024:.1f} | {s['rss_after_kib'] / 1024:.1f} "
            f"| {s['rss_growth'] * 100:+.1f}% |"
        )
    lines += _serving_cost(report)
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for target in report["targets"]:
        lines.append(
            f"| {target['target']} | {target['measured']} | {'yes' if target['met'] else 'NO'} |"
        )
    if report.get("profile"):
        prof = report["profile"]
        top = prof["top"]
        lines += [
            "",
            "## Profile of ours, 1 text/request, 64 connections (py-spy)",
            "",
            f"`py-spy record --rate 250 --threads --nonblocking` for {report['duration_s']} s "
            f"while wrk ran ({top['samples']} samples; {prof['raw']['req_s']:,.0f} req/s under "
            f"the profiler); flame graph: `{prof['svg']}`, raw stacks: `{prof['stacks']}`. Shares "
            "are of samples of non-idle threads; on a contended core, a thread that is runnable "
            "but waiting for the CPU counts as non-idle too.",
            "",
            "| thread | share |",
            "|---|---:|",
            *(f"| {name} | {share * 100:.1f}% |" for name, share in top["threads"]),
            "",
            "| part of the request path (innermost matching frame) | share |",
            "|---|---:|",
            *(f"| {name} | {share * 100:.1f}% |" for name, share in top["categories"]),
            "",
            "| function (self time) | share |",
            "|---|---:|",
            *(f"| {name} | {share * 100:.1f}% |" for name, share in top["self"]),
        ]
    lines.append("")
    return "\n".join(lines)


def _serving_cost(report: dict[str, Any]) -> list[str]:
    cost, workers = report["serving_cost"], report["workers"]
    one, two = workers["1"], workers["2"]
    lines = [
        "",
        "## Start-up and a ready worker (each server alone on the server CPU)",
        "",
        "| server | ready after s (median of starts) | RSS ready MiB | RSS after 500 requests "
        "MiB | torch loaded |",
        "|---|---:|---:|---:|---|",
    ]
    for key, title in (("noop", "FastAPI no-op"), ("ours", "ours")):
        c = cost[key]
        lines.append(
            f"| {title} | {c['start_s']:.2f} ({', '.join(map(str, c['starts_s']))}) | "
            f"{c['rss_ready_kib'] / 1024:.1f} | {c['rss_after_500_kib'] / 1024:.1f} | "
            f"{'yes' if c['torch_loaded'] else 'no'} |"
        )
    lines += [
        "",
        "## Two workers on two CPUs (1 text/request, 64 connections)",
        "",
        "wrk runs on the second CPU both times, so with two workers it shares that core with the "
        "second one: the ratio is what a second core adds on a 2-core machine, load included.",
        "",
        "| ours | req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
        f"| WORKERS=1 on CPU {report['server_cpu']} | {one['req_s']:,.0f} | {one['p50_ms']:.2f} "
        f"| {one['p99_ms']:.2f} |",
        f"| WORKERS=2 on CPUs {report['server_cpu']},{report['client_cpu']} | "
        f"{two['req_s']:,.0f} | {two['p50_ms']:.2f} | {two['p99_ms']:.2f} |",
        "",
        f"WORKERS=2 / WORKERS=1: **{ratio(two['req_s'], one['req_s']):.2f}x**.",
    ]
    return lines


def _with_p99(ours: dict[str, Any], other: dict[str, Any], name: str) -> str:
    return f"(p99 ours {ours['p99_ms']:.1f} ms, {name} {other['p99_ms']:.1f} ms)"


def check_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    res, probe = report["results"], report["probe"]
    c64, c32 = res["t1_c64"], res["t32_c4"]
    ours64, ours32 = c64["ours"], c32["ours"]
    vs_floor = ratio(ours64["req_s"], c64["floor"]["req_s"])
    vs_naive = ratio(ours64["req_s"], c64["naive"]["req_s"])
    p50 = ratio(probe["ours"]["p50_ms"], probe["naive"]["p50_ms"])
    texts = ratio(ours32["texts_s"], c32["naive"]["texts_s"])
    cost = report["serving_cost"]
    ready_mib = cost["ours"]["rss_after_500_kib"] / 1024
    start = ratio(cost["ours"]["start_s"], cost["noop"]["start_s"])
    growth = next(s["rss_growth"] for s in report["servers"] if s["key"] == "ours")
    errors = sum(r["ours"]["errors"] for r in res.values())
    targets = [
        {"target": "1 text/request, 64 conns: ours >= 0.25x the HTTP floor's req/s",
         "measured": f"{vs_floor:.2f}x {_with_p99(ours64, c64['floor'], 'floor')}",
         "met": vs_floor >= TARGET_VS_FLOOR_64},
        {"target": "1 text/request, 64 conns: ours >= 10x naive req/s",
         "measured": f"{vs_naive:.2f}x {_with_p99(ours64, c64['naive'], 'naive')}",
         "met": vs_naive >= TARGET_VS_NAIVE_64},
        {"target": "32 texts/request, 4 conns: ours >= 2.5x naive texts/s",
         "measured": f"{texts:.2f}x {_with_p99(ours32, c32['naive'], 'naive')}",
         "met": texts >= TARGET_VS_NAIVE_TEXTS_32},
        {"target": "1 text/request, 1 conn: ours p50 <= 0.25x naive p50 (probe)",
         "measured": f"{p50:.2f}x: {probe['ours']['p50_ms']:.3f} vs "
                     f"{probe['naive']['p50_ms']:.3f} ms (p99 ours {probe['ours']['p99_ms']:.2f} "
                     f"ms, naive {probe['naive']['p99_ms']:.2f} ms)",
         "met": p50 <= TARGET_P50_VS_NAIVE},
    ]  # fmt: skip
    if "litserve" in c64:
        vs_litserve = ratio(ours64["req_s"], c64["litserve"]["req_s"])
        targets.append(
            {"target": "1 text/request, 64 conns: ours >= 3x LitServe req/s",
             "measured": f"{vs_litserve:.2f}x {_with_p99(ours64, c64['litserve'], 'LitServe')}",
             "met": vs_litserve >= TARGET_VS_LITSERVE_64}
        )  # fmt: skip
    return [
        *targets,
        {"target": "serving: torch not loaded in ours",
         "measured": "loaded" if cost["ours"]["torch_loaded"] else "not loaded",
         "met": not cost["ours"]["torch_loaded"]},
        {"target": "ours ready worker after 500 requests <= 120 MiB RSS",
         "measured": f"{ready_mib:.1f} MiB", "met": ready_mib <= TARGET_READY_MIB},
        {"target": "ours ready within 2x the start-up of the FastAPI no-op (same venv)",
         "measured": f"{start:.2f}x: {cost['ours']['start_s']:.2f} vs "
                     f"{cost['noop']['start_s']:.2f} s",
         "met": start <= TARGET_START_VS_NOOP},
        {"target": "ours RSS after the run within 10% of after warm-up",
         "measured": f"{growth * 100:+.1f}%", "met": growth <= TARGET_RSS_GROWTH},
        {"target": "ours: no errors (socket or non-2xx) in any scenario",
         "measured": str(errors), "met": errors == 0},
    ]  # fmt: skip
