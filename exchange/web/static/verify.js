// Verify a ledger entry in the browser itself, trusting nothing the server says except what the
// exchange's public key signed: SHA-256 of the entry's bytes, its RFC 9162 audit path to the
// root of the latest signed tree head, and that head's Ed25519 signature (WebCrypto).
"use strict";

const hexToBytes = (hex) => Uint8Array.from(hex.match(/../g).map((b) => parseInt(b, 16)));
const b64ToBytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const bytesToHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// RFC 9162 section 2.1.3.2.
async function verifyInclusion(index, size, leaf, path, root) {
  if (index >= size) return false;
  let fn = index, sn = size - 1, r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) { while (!(fn % 2 === 1 || fn === 0)) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); } }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

async function verifyHead(head, pem) {
  const der = b64ToBytes(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""));
  const key = await crypto.subtle.importKey("spki", der, { name: "Ed25519" }, false, ["verify"]);
  // The signed bytes: canonical JSON of the four fields, keys sorted, no white space.
  const signed = JSON.stringify({ key_id: head.key_id, root_hash: head.root_hash, size: head.size, timestamp: head.timestamp });
  return crypto.subtle.verify({ name: "Ed25519" }, key, b64ToBytes(head.signature), new TextEncoder().encode(signed));
}

async function verifyEntry(index) {
  const get = async (url) => { const r = await fetch(url, { credentials: "same-origin" }); if (!r.ok) throw new Error(url + ": " + r.status); return r.json(); };
  const entry = await get(`/ledger/entries/${index}`);
  const head = await get("/v1/ledger/head");
  if (index >= head.size) return { ok: false, why: "not yet covered by a signed head" };
  const proof = await get(`/v1/ledger/proofs/inclusion?index=${index}&size=${head.size}`);
  const keys = (await get("/v1/ledger/keys")).keys;
  const key = keys.find((k) => k.key_id === head.key_id);
  if (!key) return { ok: false, why: "unknown signing key" };
  const leaf = await leafHash(b64ToBytes(entry.canonical));
  if (bytesToHex(leaf) !== entry.leaf_hash) return { ok: false, why: "the entry's bytes do not match its leaf hash" };
  const included = await verifyInclusion(index, head.size, leaf, proof.path.map(hexToBytes), hexToBytes(head.root_hash));
  if (!included) return { ok: false, why: "the audit path does not lead to the signed root" };
  if (!(await verifyHead(head, key.public_key_pem))) return { ok: false, why: "the head's signature does not verify" };
  return { ok: true, why: `size ${head.size}, key ${head.key_id}` };
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.verify");
  if (!button) return;
  const cell = button.closest("tr").querySelector(".result");
  cell.textContent = "…";
  try {
    const result = await verifyEntry(Number(button.dataset.index));
    cell.textContent = (result.ok ? cell.dataset.verified : cell.dataset.failed) + " — " + result.why;
    cell.className = "result " + (result.ok ? "ok" : "error");
  } catch (error) {
    cell.textContent = cell.dataset.failed + " — " + error.message;
    cell.className = "result error";
  }
});
