package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"btclient/dht"
	"btclient/discovery"
)

// discoveryFlags choose how peers are found: the overlay, trackers, the DHT.
type discoveryFlags struct {
	mode        string
	bootstrap   []string
	overlayPort int
	tracker     string
	dns         string
	advertise   string
	swarmKey    string
	regName     string
	dnsAPI      string
	fallback    time.Duration
	bind        string
	dht         bool
	dhtPort     int
	dhtBoot     []string
}

func (d *discoveryFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&d.bootstrap, "bootstrap", nil, "overlay bootstrap nodes, comma-separated host:port (names resolved via --dns first, then the system)")
	fs.IntVar(&d.overlayPort, "overlay-port", 6000, "overlay TCP port (0 = any free port)")
	fs.StringVar(&d.mode, "discovery-mode", "auto", "overlay | tracker | auto (overlay, and the tracker when the overlay yields no peers)")
	fs.StringVar(&d.tracker, "tracker", "", "announce URL (overrides the torrent's)")
	fs.StringVar(&d.dns, "dns", "", "btclient dnsd server (HOST:PORT) that resolves bootstrap names")
	fs.StringVar(&d.advertise, "advertise", "", "address others should dial (default: detected)")
	fs.StringVar(&d.swarmKey, "swarm-key", "", "shared overlay key: every overlay message is authenticated with it (HMAC-SHA256)")
	fs.StringVar(&d.regName, "register", "", "register this node's overlay address under NAME in dnsd (needs --dns-api)")
	fs.StringVar(&d.dnsAPI, "dns-api", "", "dnsd HTTP API URL for --register, e.g. http://dns:8054")
	fs.StringVar(&d.bind, "bind", "", "IP the peer-wire and overlay listeners bind (default: all interfaces)")
	fs.DurationVar(&d.fallback, "fallback-after", 3*time.Second, "in auto mode, how long the overlay may yield no peers before the tracker is asked")
	fs.BoolVar(&d.dht, "dht", true, "run a mainline DHT node (BEP 5) and find peers through it; never for private torrents")
	fs.IntVar(&d.dhtPort, "dht-port", 0, "DHT UDP port (0 = the peer-wire port number, as other clients do)")
	fs.StringSliceVar(&d.dhtBoot, "dht-bootstrap", nil, "DHT nodes to join through, comma-separated host:port (default: none; no public router is contacted unless named)")
}

func (d *discoveryFlags) validate() error {
	switch d.mode {
	case discovery.ModeOverlay, discovery.ModeTracker, discovery.ModeAuto:
	default:
		return fmt.Errorf("--discovery-mode %q: want overlay, tracker or auto", d.mode)
	}
	if d.overlayPort < 0 || d.overlayPort > 65535 {
		return fmt.Errorf("--overlay-port %d out of range", d.overlayPort)
	}
	if d.regName != "" && d.dnsAPI == "" {
		return errors.New("--register needs --dns-api")
	}
	if d.bind != "" && net.ParseIP(d.bind) == nil {
		return fmt.Errorf("--bind %q: want an IP address", d.bind)
	}
	for _, b := range d.bootstrap {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("--bootstrap %q: want host:port", b)
		}
	}
	if d.dhtPort < 0 || d.dhtPort > 65535 {
		return fmt.Errorf("--dht-port %d out of range", d.dhtPort)
	}
	for _, b := range d.dhtBoot {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("--dht-bootstrap %q: want host:port", b)
		}
	}
	return nil
}

// bindHost is the host the listeners bind; empty means all interfaces.
func (d *discoveryFlags) bindHost() string { return d.bind }

// config turns the flags into a discovery configuration; stateDir, if set,
// keeps the DHT's routing table.
func (d *discoveryFlags) config(log *slog.Logger, stateDir string) discovery.Config {
	cfg := discovery.DefaultConfig()
	cfg.Mode = d.mode
	cfg.FallbackAfter = d.fallback
	cfg.Tracker = d.tracker
	cfg.RegisterName, cfg.DNSAPI = d.regName, d.dnsAPI
	oc := &cfg.Overlay
	oc.ListenAddr = net.JoinHostPort(d.bind, strconv.Itoa(d.overlayPort))
	oc.Advertise = d.advertise
	if oc.Advertise == "" && d.bind != "" && !net.ParseIP(d.bind).IsUnspecified() {
		oc.Advertise = d.bind
	}
	oc.Bootstrap = nil
	oc.ResolveBootstrap = discovery.BootstrapResolver(d.dns, d.bootstrap, log)
	if d.swarmKey != "" {
		oc.SwarmKey = []byte(d.swarmKey)
	}
	if d.dht {
		dc := dht.DefaultConfig()
		// Port 0 here means the peer-wire port: the session fills it in.
		dc.ListenAddr = net.JoinHostPort(d.bind, strconv.Itoa(d.dhtPort))
		dc.Bootstrap = d.dhtBoot
		if stateDir != "" {
			dc.StateFile = filepath.Join(stateDir, "dht.state")
		}
		cfg.DHT = &dc
	}
	return cfg
}
