// The playground page in headless Chromium against the Node host with the shipped model (the
// fixture generates 240 tokens faster than a click, so Stop could not be tested on it).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type Page } from "playwright-core";
import { startFixtureServer, type RunningServer } from "./helpers/server.js";

const CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"];

describe("playground page", () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    server = await startFixtureServer({ MODEL_DIR: join(import.meta.dirname, "../model") });
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_FLAGS });
    page = await browser.newPage({ viewport: { width: 390, height: 844 } }); // a phone's width
    const blocked: string[] = [];
    await page.route("**/*", (route) => {
      const url = new URL(route.request().url());
      if (url.hostname !== "127.0.0.1") {
        blocked.push(url.href);
        return route.abort();
      }
      return route.continue();
    });
    await page.goto(server.baseURL);
    expect(blocked).toEqual([]); // no external fonts, scripts or CDNs
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it("shows the model card from /v1/models", async () => {
    await expect.poll(() => page.textContent("#card")).toContain("tinylm-edge-14m");
    expect(await page.textContent("#card")).toMatch(/vocabulary 8192/);
  });

  it("streams text that grows over several animation frames, then Stop ends it", async () => {
    await page.fill("#prompt", "Once upon a time");
    await page.fill("#max_tokens", "480");
    await page.fill("#temperature", "1");
    // Record the output length at every animation frame while generating.
    await page.evaluate(() => {
      const w = window as unknown as { lengths: number[] };
      w.lengths = [];
      const tick = () => {
        w.lengths.push(document.getElementById("output")!.textContent!.length);
        if (w.lengths.length < 600) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    await page.keyboard.press("Tab"); // keyboard-usable: focus moves through labelled controls
    await page.click("#start");
    await page.waitForFunction(() => document.getElementById("output")!.textContent!.length > 0);
    await page.click("#stopbtn");
    await expect.poll(() => page.textContent("#status")).toMatch(/Stopped|Done/);
    expect(await page.isDisabled("#stopbtn")).toBe(true);
    const lengths: number[] = await page.evaluate(() => (window as unknown as { lengths: number[] }).lengths);
    const distinct = new Set(lengths.filter((n) => n > 0));
    expect(distinct.size).toBeGreaterThanOrEqual(2); // text grew across frames, not in one piece
    expect(Number(await page.textContent("#tokens"))).toBeGreaterThan(0);
    mkdirSync("test-artifacts", { recursive: true });
    await page.screenshot({ path: "test-artifacts/playground.png", fullPage: true });
  });

  it("reports an API error in words", async () => {
    await page.fill("#temperature", "5");
    await page.click("#start");
    await expect.poll(() => page.textContent("#status")).toMatch(/400: Invalid value for 'temperature'/);
    expect(await page.getAttribute("#status", "class")).toBe("error");
  });

  it("labels every control", async () => {
    const unlabelled = await page.evaluate(() =>
      Array.from(document.querySelectorAll("input, select, textarea")).filter((el) => !document.querySelector(`label[for="${el.id}"]`)).map((el) => el.id),
    );
    expect(unlabelled).toEqual([]);
  });
});
