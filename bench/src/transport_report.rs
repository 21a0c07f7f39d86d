//! The markdown of `dits-bench transport`: QUIC against TLS over TCP, medians and TCP / QUIC
//! ratios per workload, then every run in the order it ran.

use std::fmt::Write as _;

use crate::proc::median_of;
use crate::remote::Step;
use crate::report::{bytes, ratio};
use crate::transport::{Results, Transport, Trial, WorkloadResult};

/// How a metric's value reads.
#[derive(Clone, Copy)]
enum Unit {
    Secs,
    Bytes,
    Kib,
    MBps,
}

fn show(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Secs => format!("{v:.3} s"),
        Unit::Bytes => bytes(v as u64),
        Unit::Kib => format!("{:.1} MiB", v / 1024.0),
        Unit::MBps => format!("{v:.0} MB/s"),
    }
}

fn mbps(total: u64, wall_secs: f64) -> f64 {
    total as f64 / wall_secs.max(1e-9) / 1e6
}

type Metric = fn(&Trial) -> f64;

fn wall(s: &Step) -> f64 {
    s.run.wall.as_secs_f64()
}

fn client_cpu(s: &Step) -> f64 {
    s.run.cpu().as_secs_f64()
}

fn server_cpu(s: &Step) -> f64 {
    s.server_cpu.as_secs_f64()
}

/// One metric's medians over each transport's runs, and the two TCP / QUIC ratios.
struct Row {
    quic: f64,
    tcp: f64,
    of_medians: f64,
    paired: f64,
}

fn row(r: &WorkloadResult, f: impl Fn(&Trial) -> f64) -> Option<Row> {
    let of = |t: Transport| median_of(r.trials.iter().filter(|x| x.transport == t).map(&f));
    let (quic, tcp) = (of(Transport::Quic)?, of(Transport::Tcp)?);
    // The QUIC and the TCP trial of the same run ran back to back: drift cancels in their ratio.
    let paired = median_of(
        r.trials
            .iter()
            .filter(|x| x.transport == Transport::Tcp)
            .filter_map(|t| {
                let q = r
                    .trials
                    .iter()
                    .find(|q| q.run == t.run && q.transport == Transport::Quic)?;
                Some(f(t) / f(q).max(1e-12))
            }),
    )?;
    Some(Row {
        quic,
        tcp,
        of_medians: tcp / quic.max(1e-12),
        paired,
    })
}

pub fn render(machine: &[(String, String)], r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Dits transports: QUIC against TLS 1.3 over TCP (yamux), push and clone over loopback\n"
    );
    let _ = writeln!(s, "| machine | |\n|---|---|");
    for (k, v) in machine {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let _ = writeln!(
        s,
        "| server | `git dits serve --transport both` on 127.0.0.1 (UDP and TCP on one port), a \
         fresh one with an empty store for every push |"
    );
    let _ = writeln!(
        s,
        "| client | `git -c dits.transport=quic` or `git -c dits.transport=tcp` on `push` and \
         `clone` |"
    );
    let _ = writeln!(
        s,
        "| runs | {} per transport and workload, alternating QUIC, TCP, QUIC, TCP, ... |",
        r.runs
    );

    let _ = writeln!(
        s,
        "\n## TCP / QUIC, wall time (of the medians; above 1× means TCP took longer)\n"
    );
    let _ = writeln!(
        s,
        "| workload | push | clone | push CPU, client + server | clone CPU, client + server |\n|---|--:|--:|--:|--:|"
    );
    for w in &r.workloads {
        let cell = |f: Metric| row(w, f).map_or("–".into(), |x| ratio(x.of_medians));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            w.workload.label(),
            cell(|t| wall(&t.push)),
            cell(|t| wall(&t.clone)),
            cell(|t| client_cpu(&t.push) + server_cpu(&t.push)),
            cell(|t| client_cpu(&t.clone) + server_cpu(&t.clone)),
        );
    }

    for w in &r.workloads {
        workload(&mut s, w, r.runs);
    }
    notes(&mut s);
    s
}

fn workload(s: &mut String, w: &WorkloadResult, runs: usize) {
    let total = w.workload.total();
    let _ = writeln!(
        s,
        "\n## {}: medians of {runs} run{}\n",
        w.workload.label(),
        if runs == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        s,
        "| | QUIC | TCP | TCP / QUIC (of the medians) | TCP / QUIC (median of per-run pairs) |\n|---|--:|--:|--:|--:|"
    );
    let metrics: [(&str, Unit, Metric); 13] = [
        ("push: wall", Unit::Secs, |t| wall(&t.push)),
        ("push: client CPU (user+sys)", Unit::Secs, |t| {
            client_cpu(&t.push)
        }),
        ("push: server CPU", Unit::Secs, |t| server_cpu(&t.push)),
        ("push: client + server CPU", Unit::Secs, |t| {
            client_cpu(&t.push) + server_cpu(&t.push)
        }),
        ("push: client peak RSS", Unit::Kib, |t| {
            t.push.run.max_rss_kib as f64
        }),
        ("push: on the wire", Unit::Bytes, |t| t.push.wire as f64),
        ("clone: wall", Unit::Secs, |t| wall(&t.clone)),
        ("clone: client CPU (user+sys)", Unit::Secs, |t| {
            client_cpu(&t.clone)
        }),
        ("clone: server CPU", Unit::Secs, |t| server_cpu(&t.clone)),
        ("clone: client + server CPU", Unit::Secs, |t| {
            client_cpu(&t.clone) + server_cpu(&t.clone)
        }),
        ("clone: client peak RSS", Unit::Kib, |t| {
            t.clone.run.max_rss_kib as f64
        }),
        ("clone: on the wire", Unit::Bytes, |t| t.clone.wire as f64),
        ("server peak RSS (push and clone)", Unit::Kib, |t| {
            t.server_peak_rss_kib as f64
        }),
    ];
    for (name, unit, f) in metrics {
        if let Some(x) = row(w, f) {
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} | {} |",
                show(unit, x.quic),
                show(unit, x.tcp),
                ratio(x.of_medians),
                ratio(x.paired)
            );
        }
        // Throughput right under each wall time, from the same medians.
        if let Some(op) = name.strip_suffix(": wall") {
            if let Some(x) = row(w, f) {
                let (q, t) = (mbps(total, x.quic), mbps(total, x.tcp));
                let _ = writeln!(
                    s,
                    "| {}: MB/s (of the median wall) | {} | {} | {} | |",
                    op,
                    show(Unit::MBps, q),
                    show(Unit::MBps, t),
                    ratio(t / q.max(1e-12))
                );
            }
        }
    }

    let _ = writeln!(s, "\n### Every run, in the order it ran\n");
    let _ = writeln!(
        s,
        "| run | transport | push wall | push CPU client / server | push UDP datagrams / TCP segments | clone wall | clone CPU client / server | clone UDP datagrams / TCP segments |\n|--:|---|--:|--:|--:|--:|--:|--:|"
    );
    for t in &w.trials {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} / {} | {} / {} | {} | {} / {} | {} / {} |",
            t.run,
            t.transport.name(),
            show(Unit::Secs, wall(&t.push)),
            show(Unit::Secs, client_cpu(&t.push)),
            show(Unit::Secs, server_cpu(&t.push)),
            t.push_ip.udp_out_datagrams,
            t.push_ip.tcp_out_segs,
            show(Unit::Secs, wall(&t.clone)),
            show(Unit::Secs, client_cpu(&t.clone)),
            show(Unit::Secs, server_cpu(&t.clone)),
            t.clone_ip.udp_out_datagrams,
            t.clone_ip.tcp_out_segs,
        );
    }
}

fn notes(s: &mut String) {
    let _ = writeln!(
        s,
        "\n## How this was measured\n\n\
- Each workload is one commit in a client repository, made once (untimed) with \
`git dits track '*.bin'`; its files are BLAKE3-XOF seeded bytes (the one-file workload is the \
file of `dits-bench remote`). Each run pushes it (`git push -q <remote> main`, a remote of its \
own per run) into a new `git dits serve --transport both` with an empty store, then clones it \
from that server into a new directory (`git clone -q`, checkout included) and checks every \
file byte for byte with BLAKE3. QUIC and TCP trials alternate, QUIC first in each run, so slow \
drift of the machine lands on both.\n\
- The transport is chosen with `git -c dits.transport=quic|tcp`, which git hands to every \
process it starts (git-remote-dits, the smudge filter); neither value falls back to the other. \
The run also checks it: across each push and clone, the namespace's `Udp OutDatagrams` must \
grow more than its `Tcp OutSegs` for QUIC, and the other way round for TCP \
(`/proc/net/snmp`, shown per run), and the server's TCP port must accept connections.\n\
- The timed step is that of `dits-bench remote`: an untimed `sync` first; wall time from \
spawn to reap; client CPU (user+sys) and peak RSS from `wait4`, covering every process the \
client command waited for; server CPU as the growth of the server's utime+stime in `/proc`; \
bytes on the wire as the growth of loopback's `tx_bytes` (both directions, all headers). \
Caches are not dropped.\n\
- Medians are per metric over the runs of one transport (the lower middle for an even \
count). \"Of the medians\" divides TCP's median by QUIC's; \"per-run pairs\" is the median of \
TCP / QUIC within each run, whose two trials ran back to back. MB/s is 10^6 bytes of content \
per second of the median wall time."
    );
}
