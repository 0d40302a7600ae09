package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"btclient/torrent"
)

// chromium finds Debian's Chromium, skipping (or failing under CI) without it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	needBinary(t, "chromium")
	return ""
}

// The web page in a real (headless) browser: a magnet added through the
// page reaches 100 %, is stopped and removed, all by clicking.
func TestWebPageAddsStopsAndRemovesAMagnet(t *testing.T) {
	browser := chromium(t)
	src := t.TempDir()
	content := randomFile(t, src, "clip.bin", 4<<20)
	tor := makeTorrent(t, content, "--piece-length", "64KiB")
	meta, _ := torrent.Load(tor)
	peer, _, _ := seeder(t, "seeder", src, tor)
	magnet := meta.Magnet().String() + "&x.pe=" + peer
	hash := fmt.Sprintf("%x", meta.InfoHash)

	dir := t.TempDir()
	d := startDaemon(t, "daemon", dir, t.TempDir())

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1200, 700), chromedp.UserDataDir(t.TempDir()),
		// Nothing but loopback: any other request goes to a closed proxy
		// port (loopback itself bypasses proxies) and is not tried.
		chromedp.ProxyServer("http://127.0.0.1:9"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-pings", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	row := fmt.Sprintf(`document.querySelector('tr[data-hash="%s"]')`, hash)
	// waitJS polls a JavaScript condition in the page.
	waitJS := func(what, cond string) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
				t.Fatalf("timed out waiting for %s; the page says:\n%s", what, body)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	if err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+d.rpcAddr+"/"),
		chromedp.WaitVisible(chromedp.ID("magnet")),
		chromedp.SendKeys(chromedp.ID("magnet"), magnet),
		chromedp.Click(chromedp.ID("add")),
	); err != nil {
		t.Fatal(err)
	}
	// The page asks before removing; the test says yes.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.confirm = () => true; true`)); err != nil {
		t.Fatal(err)
	}
	waitJS("the torrent at 100 %", row+` !== null && `+row+`.querySelector('progress').value === 1 && `+
		row+`.querySelector('.state').textContent === 'Seeding'`)
	sameFile(t, content, filepath.Join(dir, "clip.bin"))

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv("E2E_SCREENSHOTS")
	if shots == "" {
		shots = os.TempDir()
	}
	shot := filepath.Join(shots, "btclient-web-page.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the page with the torrent at 100 %%: %s", shot)

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr[data-hash="`+hash+`"] button.stop`))); err != nil {
		t.Fatal(err)
	}
	waitJS("the torrent stopped", row+` !== null && `+row+`.querySelector('.state').textContent === 'Stopped'`)
	if got := d.torrents(); len(got) != 1 || got[0].Status != 0 {
		t.Fatalf("the daemon after Stop: %+v", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr[data-hash="`+hash+`"] button.remove`))); err != nil {
		t.Fatal(err)
	}
	waitJS("the torrent gone from the page", row+` === null && document.getElementById('message').textContent.startsWith('removed')`)
	if got := d.torrents(); len(got) != 0 {
		t.Fatalf("the daemon after Remove: %+v", got)
	}
	// Remove (not "Remove + data") keeps the files.
	sameFile(t, content, filepath.Join(dir, "clip.bin"))
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if !strings.Contains(text, "No torrents yet") {
		t.Fatalf("the empty page does not say so:\n%s", text)
	}
}
