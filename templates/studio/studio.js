// Fits each frame to its message, and reloads the page when a watched file changes.
const version = document.body.dataset.version;
for (const frame of document.querySelectorAll("iframe")) {
  frame.addEventListener("load", () => {
    const doc = frame.contentDocument;
    if (doc) frame.style.height = (doc.documentElement.scrollHeight + 4) + "px";
  });
}
async function poll() {
  try {
    const reply = await fetch("/version", {cache: "no-store"});
    if ((await reply.json()).version !== version) { location.reload(); return; }
  } catch (e) { /* the studio restarts: keep polling */ }
  setTimeout(poll, 1000);
}
setTimeout(poll, 1000);
