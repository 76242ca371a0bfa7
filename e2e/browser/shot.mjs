// Opens URL in headless Chromium, saves a screenshot to PNG and prints one JSON line with the
// status and the page text. Usage: node shot.mjs URL PNG [CHROMIUM]
import { chromium } from 'playwright-core';

const [url, png, executable = '/usr/bin/chromium'] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: executable,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage'],
});
let code = 0;
try {
  const page = await browser.newPage();
  const response = await page.goto(url);
  await page.screenshot({ path: png, fullPage: true });
  console.log(JSON.stringify({ status: response ? response.status() : 0, text: await page.innerText('body') }));
} catch (err) {
  console.error(`screenshot failed: ${err}`);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
