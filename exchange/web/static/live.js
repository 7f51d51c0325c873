// Refresh the order book and recent trades every few seconds: no framework, no build step.
"use strict";
const market = document.getElementById("market");
if (market) {
  setInterval(async () => {
    const response = await fetch(market.dataset.refresh, { credentials: "same-origin" });
    if (response.ok) market.innerHTML = await response.text();
  }, 3000);
}
