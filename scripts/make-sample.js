#!/usr/bin/env node
// Draws assets/sample-face.png: an aligned 512 x 512 face that this project made itself and
// may ship, degraded the way real low-quality faces are (downscaled, noisy, JPEG-compressed).
// Deterministic: the same script writes the same picture.
'use strict';

const path = require('node:path');
const sharp = require('sharp');

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="512" height="512" viewBox="0 0 512 512">
  <defs>
    <linearGradient id="wall" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="#9fb3c8"/><stop offset="1" stop-color="#5d7389"/>
    </linearGradient>
    <radialGradient id="skin" cx="0.45" cy="0.4" r="0.7">
      <stop offset="0" stop-color="#f2c9a8"/><stop offset="1" stop-color="#c98f6b"/>
    </radialGradient>
  </defs>
  <rect width="512" height="512" fill="url(#wall)"/>
  <path d="M96 512 C110 420 170 392 256 392 C342 392 402 420 416 512 Z" fill="#2f4a6b"/>
  <rect x="220" y="330" width="72" height="80" rx="20" fill="#d9a282"/>
  <ellipse cx="256" cy="262" rx="118" ry="146" fill="url(#skin)"/>
  <path d="M134 250 C120 120 200 78 262 80 C340 82 398 130 380 250 C372 190 330 150 256 152 C186 154 146 186 134 250 Z" fill="#3b2618"/>
  <ellipse cx="138" cy="272" rx="14" ry="30" fill="#d29a78"/>
  <ellipse cx="374" cy="272" rx="14" ry="30" fill="#d29a78"/>
  <path d="M176 218 Q206 200 234 214" stroke="#3b2618" stroke-width="9" fill="none" stroke-linecap="round"/>
  <path d="M278 214 Q306 200 336 218" stroke="#3b2618" stroke-width="9" fill="none" stroke-linecap="round"/>
  <ellipse cx="205" cy="244" rx="24" ry="13" fill="#ffffff"/>
  <ellipse cx="307" cy="244" rx="24" ry="13" fill="#ffffff"/>
  <circle cx="207" cy="244" r="10" fill="#4a6d3a"/><circle cx="305" cy="244" r="10" fill="#4a6d3a"/>
  <circle cx="207" cy="244" r="4.5" fill="#111111"/><circle cx="305" cy="244" r="4.5" fill="#111111"/>
  <path d="M256 252 L242 306 Q256 316 272 306" stroke="#a86c50" stroke-width="6" fill="none" stroke-linejoin="round"/>
  <path d="M206 346 Q256 380 306 346 Q256 362 206 346 Z" fill="#b2524d"/>
</svg>`;

// A small linear congruential generator, so the noise is the same on every run.
function noise(seed) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

async function main() {
  const clean = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const small = await sharp(clean.data, { raw: clean.info }).resize(112, 112, { kernel: 'cubic' }).raw().toBuffer();
  const blurry = await sharp(small, { raw: { width: 112, height: 112, channels: 3 } })
    .resize(512, 512, { kernel: 'cubic' }).raw().toBuffer();
  const random = noise(2212);
  for (let i = 0; i < blurry.length; i++) {
    const gaussian = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    blurry[i] = Math.max(0, Math.min(255, Math.round(blurry[i] + 9 * gaussian)));
  }
  const jpeg = await sharp(blurry, { raw: { width: 512, height: 512, channels: 3 } }).jpeg({ quality: 30 }).toBuffer();
  const out = path.join(__dirname, '..', 'assets', 'sample-face.png');
  await sharp(jpeg).png({ compressionLevel: 9 }).toFile(out);
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
