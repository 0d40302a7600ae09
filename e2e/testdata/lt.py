#!/usr/bin/python3
"""A libtorrent peer for btclient's interoperability tests and benchmarks.

usage: lt.py seed|leech TORRENT|MAGNET DIR --listen IP:PORT [--peer IP:PORT ...]

seed: serve DIR's copy of TORRENT until killed; prints "seeding" once checked.
leech: download into DIR, print "complete" and exit 0 when every piece is
verified (exit 1 after --timeout seconds). A magnet link's metadata comes
from peers (BEP 9). LSD, UPnP and NAT-PMP are off, and the DHT unless
--dht-node names nodes to join it through (no public router is ever used);
peers come from --peer, the torrent's tracker, peer exchange and the DHT.
"""
import argparse
import os
import sys
import time

import libtorrent as lt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["seed", "leech"])
    ap.add_argument("torrent")
    ap.add_argument("dir")
    ap.add_argument("--listen", required=True)
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--stay", action="store_true", help="leech: keep seeding after completion until killed")
    ap.add_argument("--download-rate", type=int, default=0, help="cap downloads at this many bytes/s")
    ap.add_argument("--upload-rate", type=int, default=0, help="cap uploads at this many bytes/s")
    ap.add_argument("--super-seed", action="store_true", help="seed: super-seed (BEP 16)")
    ap.add_argument("--high-performance", action="store_true",
                    help="start from libtorrent's high_performance_seed() settings")
    ap.add_argument("--report", help="write the payload bytes uploaded to this file twice a second")
    ap.add_argument("--dht-node", action="append", default=[],
                    help="turn the DHT on, joined through this node (never a public router)")
    a = ap.parse_args()

    settings = lt.high_performance_seed() if a.high_performance else {}
    settings.update({
        "listen_interfaces": a.listen,
        "enable_dht": bool(a.dht_node),
        "dht_bootstrap_nodes": "",
        # Nodes on 127.0.0.x must be able to route to each other.
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        # TCP only: uTP's delay-based congestion control crawls on loopback.
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
        "user_agent": "libtorrent-interop-test",
    })
    s = lt.session(settings)
    if a.torrent.startswith("magnet:"):
        params = lt.parse_magnet_uri(a.torrent)
        params.save_path = a.dir
        h = s.add_torrent(params)
    else:
        h = s.add_torrent({"ti": lt.torrent_info(a.torrent), "save_path": a.dir})
    for n in a.dht_node:
        host, port = n.rsplit(":", 1)
        s.add_dht_node((host, int(port)))
    if a.upload_rate:
        h.set_upload_limit(a.upload_rate)
    if a.super_seed:
        h.set_flags(lt.torrent_flags.super_seeding)
    if a.download_rate:
        # A torrent's own limit: the session's exempts local peers.
        h.set_download_limit(a.download_rate)
    for p in a.peer:
        host, port = p.rsplit(":", 1)
        h.connect_peer((host, int(port)))

    deadline = time.time() + a.timeout
    announced = False
    last_connect = time.time()
    last_dht = 0.0
    last_report = 0.0
    while time.time() < deadline or a.mode == "seed" or announced:
        st = h.status()
        for alert in s.pop_alerts():
            if alert.category() & lt.alert.category_t.error_notification:
                print("alert:", alert.message(), flush=True)
        if a.mode == "seed" and st.is_seeding and not announced:
            print("seeding", flush=True)
            announced = True
        if a.mode == "leech" and st.is_seeding and not announced:
            print("complete", st.total_payload_download, flush=True)
            announced = True
            if not a.stay:
                return 0
        if a.report and time.time() - last_report > 0.5:
            with open(a.report + ".tmp", "w") as f:
                f.write("%d\n" % st.total_payload_upload)
            os.replace(a.report + ".tmp", a.report)
            last_report = time.time()
        # Announce to the DHT often: the test has no minutes to wait.
        if a.dht_node and time.time() - last_dht > 3:
            if s.status().dht_nodes == 0:
                for n in a.dht_node:
                    host, port = n.rsplit(":", 1)
                    s.add_dht_node((host, int(port)))
            h.force_dht_announce()
            last_dht = time.time()
        # Re-dial the given peers now and then, as a real client would.
        if a.peer and time.time() - last_connect > 3 and st.num_peers == 0:
            for p in a.peer:
                host, port = p.rsplit(":", 1)
                h.connect_peer((host, int(port)))
            last_connect = time.time()
        time.sleep(0.05)
    print("timeout: progress", h.status().progress, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
