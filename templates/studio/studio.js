// Fits each frame to its message, and reloads the page when a watched file changes.
const version = document.body.dataset.version;
function fit(frame) {
  const doc = frame.contentDocument;
  if (doc && doc.readyState === "complete" && doc.location.href !== "about:blank") {
    frame.style.height = (doc.documentElement.scrollHeight + 4) + "px";
  }
}
for (const frame of document.querySelectorAll("iframe")) {
  frame.addEventListener("load", () => fit(frame));
  fit(frame);  // a frame may have loaded before this script ran: its load event is gone
}
async function poll() {
  try {
    const reply = await fetch("/version", {cache: "no-store"});
    if ((await reply.json()).version !== version) { location.reload(); return; }
  } catch (e) { /* the studio restarts: keep polling */ }
  setTimeout(poll, 1000);
}
setTimeout(poll, 1000);
