// Logs in through oidc-gate in a real headless Chromium (Debian's, driven by playwright-core)
// and prints one JSON line: the final URL, status and page text, plus the cookies the browser
// holds for the gateway. The screenshot of the final page is written to SCREENSHOT.
//
// Usage: node login.mjs URL USERNAME PASSWORD SCREENSHOT [CHROMIUM]
import { chromium } from 'playwright-core';

const [url, username, password, screenshot, executable = '/usr/bin/chromium'] = process.argv.slice(2);
if (!url || !username || !password || !screenshot) {
  console.error('usage: node login.mjs URL USERNAME PASSWORD SCREENSHOT [CHROMIUM]');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: executable,
  headless: true,
  timeout: 60_000,
  // As root in a container, with no network but loopback: no sandbox, no background traffic.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage'],
});
let exitCode = 0;
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  // The gateway sends the browser to the IdP's sign-in form.
  await page.goto(url);
  await page.waitForSelector('input[name="username"]');
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  // Back through the callback to the app.
  const back = page.waitForURL((u) => u.origin === new URL(url).origin && !u.pathname.includes('/oauth2/'));
  await page.click('button[type="submit"]');
  await back;
  const response = await page.reload();
  await page.screenshot({ path: screenshot, fullPage: true });
  const cookies = await context.cookies(url);
  console.log(JSON.stringify({
    url: page.url(),
    status: response ? response.status() : 0,
    text: await page.innerText('body'),
    cookies: cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, secure: c.secure, sameSite: c.sameSite })),
  }));
} catch (err) {
  console.error(`browser login failed: ${err && err.stack ? err.stack : err}`);
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);
