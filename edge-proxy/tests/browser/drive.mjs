// Drives Debian's Chromium (playwright-core, never a downloaded browser) through one playback
// of player.html and reports what was on screen, for edge-proxy/tests/browser_playback.rs.
//
// usage: node drive.mjs '<json options>'
//   pageUrl      http://127.0.0.1:<port>/player.html (a secure context, so EME is offered)
//   player       "shaka" or "dashjs" (DASH, ClearKey from the MPD), "hls" (hls.js, AES-128) or
//                "hls-clearkey" (hls.js, CMAF HLS with ClearKey EME)
//   manifestApi  the edge's GET /playback/{videoId}/manifest URL
//   jwt          the viewer's JWT (manifest API and license requests)
//   wrongKey     when true, every `k` in the ClearKey license response or every AES-128 key
//                (hls) is replaced by a random key before the player sees it
//   minSeconds   play until currentTime reaches this (default 3)
//   timeoutMs    give up waiting after this long (default 30000)
//   regions      [{name, x, y, w, h}] rectangles, fractions of the video element
//   screenshot   optional path to keep the PNG
//   chromium     browser binary (default $CHROMIUM_BIN or /usr/bin/chromium)
// Prints one JSON object on stdout: {playing, currentTime, report, regions, ...}. Exits 0 when
// the page could be driven at all; the caller judges the result. Exit 2: the driver failed.
import { chromium } from 'playwright-core';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Flags verified on this kind of machine (see DESIGN.md "Testing"): without the
// background-networking ones Chromium keeps dialling Google hosts the sandboxed network refuses.
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // Let muted video start without a user gesture.
  '--autoplay-policy=no-user-gesture-required',
];

const opts = JSON.parse(process.argv[2] ?? '{}');
const minSeconds = opts.minSeconds ?? 3;
const timeoutMs = opts.timeoutMs ?? 30000;
const log = (...args) => console.error('[drive]', ...args);

function randomKeyBase64url() {
  return randomBytes(16).toString('base64url');
}

async function main() {
  // A fresh profile every run: no cached licenses, no persisted state between cases.
  const userDataDir = await mkdtemp(join(tmpdir(), 'edge-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opts.chromium ?? process.env.CHROMIUM_BIN ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 800, height: 450 },
    timeout: 30000,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => log('console.' + m.type() + ':', m.text()));
    page.on('pageerror', (e) => log('pageerror:', e.message));
    page.on('requestfailed', (r) => log('request failed:', r.method(), r.url().split('?')[0],
      r.failure()?.errorText));

    let tampered = 0;
    if (opts.wrongKey && opts.player === 'hls') {
      // AES-128: answer every key URI with 16 random bytes instead of the content key.
      await page.route((url) => url.pathname.startsWith('/keys/'), async (route) => {
        const response = await route.fetch();
        tampered += 1;
        await route.fulfill({ response, body: randomBytes(16) });
      });
    } else if (opts.wrongKey) {
      // Swap every content key in the license for a random one: the CDM then "decrypts" to
      // garbage, which must fail the same pixel check a correct license passes.
      // The license URL comes from the MPD: any ClearKey endpoint of the edge.
      await page.route((url) => url.pathname.startsWith('/drm/clearkey/'),
        async (route) => {
          const response = await route.fetch();
          const body = await response.json();
          for (const key of body.keys ?? []) { key.k = randomKeyBase64url(); tampered += 1; }
          await route.fulfill({ response, json: body });
        });
    }

    await page.goto(opts.pageUrl, { waitUntil: 'load' });
    const start = { hls: 'playHls', 'hls-clearkey': 'playHlsClearkey', dashjs: 'playDashjs' }[opts.player] ?? 'playShaka';
    let startError = null;
    const deadline = Date.now() + timeoutMs;
    try {
      // play() never settles when no frame can be decoded (no key, say): bound the wait.
      let timer;
      await Promise.race([
        page.evaluate(([fn, args]) => window[fn](args), [start, {
          manifestApi: opts.manifestApi, jwt: opts.jwt,
        }]),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('player did not start within timeoutMs')),
            timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
    } catch (e) {
      startError = String(e.message ?? e).split('\n')[0];
      log('start failed:', startError);
    }

    // Wait for playback to pass minSeconds, or an error, or the timeout.
    let state = null;
    for (;;) {
      state = await page.evaluate(() => ({
        currentTime: document.getElementById('video').currentTime,
        readyState: document.getElementById('video').readyState,
        paused: document.getElementById('video').paused,
        errors: window.report.errors.length,
      }));
      if (state.currentTime >= minSeconds || state.errors > 0 || Date.now() > deadline) break;
      await page.waitForTimeout(100);
    }
    // Hold one frame still for the screenshot.
    await page.evaluate(() => document.getElementById('video').pause());
    await page.waitForTimeout(300);

    const png = await page.locator('#video').screenshot({ type: 'png' });
    if (opts.screenshot) await writeFile(opts.screenshot, png);
    const regions = await page.evaluate(([b64, rs]) => window.regionStats(b64, rs),
      [png.toString('base64'), opts.regions ?? []]);
    // Stop like a real player, so the next run's stream is not refused by the viewer's
    // concurrent-stream limit.
    const stopStatus = await page.evaluate((jwt) => window.stopStream(jwt), opts.jwt)
      .catch((e) => String(e.message ?? e).split('\n')[0]);
    const report = await page.evaluate(() => window.report);
    const final = await page.evaluate(() => {
      const v = document.getElementById('video');
      const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
      return { currentTime: v.currentTime, readyState: v.readyState,
               decodedFrames: q.totalVideoFrames ?? null, droppedFrames: q.droppedVideoFrames ?? null };
    });
    const result = {
      player: opts.player,
      reachedMinSeconds: state.currentTime >= minSeconds,
      startError,
      ...final,
      tamperedKeys: tampered,
      stopStatus,
      report: { ...report, masterUrl: report.masterUrl ? report.masterUrl.split('?')[0] : null },
      regions,
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await context.close();
    await rm(userDataDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error('[drive] failed:', e);
  process.exit(2);
});
