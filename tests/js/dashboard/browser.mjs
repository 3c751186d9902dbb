// Debian's chromium driven by puppeteer-core, headless, with a watch on
// everything a user would notice: console errors, uncaught exceptions,
// failed requests, and any request leaving the page's own origin (aborted
// and reported, so the page provably loads nothing from the internet).
import puppeteer from 'puppeteer-core';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

export async function launch() {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
  });
}

/**
 * A page that records problems: problems.console (errors and warnings),
 * problems.page (uncaught), problems.failed (requests), problems.foreign (non-local origins).
 * Expected failures (e.g. an SSE request cut by the test) can be matched away with allowFailed.
 */
export async function watchedPage(browser, origin, { width = 1280, height = 900, alsoAllowed = [] } = {}) {
  const page = await browser.newPage();
  await page.setViewport({ width, height });
  const problems = { console: [], page: [], failed: [], foreign: [] };
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn' || m.type() === 'warning') {
      problems.console.push(`${m.type()}: ${m.text()} ${m.location()?.url ?? ''}`);
    }
  });
  page.on('pageerror', (e) => problems.page.push(String(e?.stack ?? e)));
  page.on('requestfailed', (r) => problems.failed.push(`${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => {
    if (r.status() >= 400) {
      problems.failed.push(`${r.url()} HTTP ${r.status()}`);
    }
  });
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    const url = r.url();
    if ([origin, ...alsoAllowed].some((o) => url.startsWith(o + '/')) || url.startsWith('data:')) {
      r.continue();
    } else {
      problems.foreign.push(url);
      r.abort('blockedbyclient');
    }
  });
  return { page, problems };
}

export const stats = (page) => page.evaluate(() => window.scadaDashboard.stats());

export async function waitForStats(page, what, predicate, timeoutMs = 10000) {
  const until = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await stats(page);
    if (predicate(last)) {
      return last;
    }
    if (Date.now() > until) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stats: ${JSON.stringify({ ...last, series: Object.keys(last.series) }).slice(0, 1500)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
