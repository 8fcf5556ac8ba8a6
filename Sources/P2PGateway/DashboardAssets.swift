/// The live dashboard at `/`: a page, its script and its style, kept in the binary so that
/// it needs nothing from any other host. The page holds no data: the script asks the JSON
/// API for everything, with the network key from the page's fragment (`/#key=KEY`, which
/// browsers never send), so the page itself is served without the key.
enum DashboardAssets {
    static let html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>p2p swarm</title>
        <link rel="stylesheet" href="/dashboard.css">
        </head>
        <body>
        <header><h1>p2p swarm</h1><span id="status">connecting…</span></header>
        <section>
        <h2>Transfers</h2>
        <table id="transfers"><thead><tr><th>file</th><th>state</th><th>done</th><th></th>
        <th>rate</th><th>peers</th><th>ETA</th><th></th></tr></thead><tbody></tbody></table>
        <p class="empty" id="no-transfers">No downloads through this gateway yet.</p>
        </section>
        <section>
        <h2>Peers</h2>
        <table id="peers"><thead><tr><th>peer</th><th>id</th><th>address</th><th>sending to it</th>
        <th>receiving from it</th><th>last heard</th></tr></thead><tbody></tbody></table>
        </section>
        <section>
        <h2>Files</h2>
        <div id="files"></div>
        </section>
        <script src="/dashboard.js"></script>
        </body>
        </html>
        """

    static let css = """
        body { font: 14px system-ui, sans-serif; margin: 0 2em 2em; color: #222; }
        header { display: flex; align-items: baseline; gap: 1em; }
        h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
        #status { color: #666; }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eee; white-space: nowrap; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        .bar { width: 200px; height: 10px; background: #eee; border-radius: 5px; overflow: hidden; }
        .bar > div { height: 100%; background: #3a7; }
        tr[data-state="failed"] .bar > div, tr[data-state="cancelled"] .bar > div { background: #c44; }
        .file { margin: 0.8em 0; } .file .meta { color: #666; margin-left: 0.5em; }
        .map { display: flex; gap: 1px; margin: 2px 0; }
        .map span { flex: 1; height: 8px; background: #eee; }
        .holder { display: grid; grid-template-columns: 16em 1fr; align-items: center; gap: 0.5em; }
        .empty { color: #888; }
        button { font: inherit; }
        """

    static let script = """
        "use strict";
        const key = new URLSearchParams(location.hash.slice(1)).get("key");
        const auth = key ? { Authorization: "Bearer " + key } : {};
        const transfers = new Map();

        function element(tag, attributes, ...children) {
          const node = document.createElement(tag);
          for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
          for (const child of children) node.append(child);
          return node;
        }

        function bytes(count) {
          const units = ["B", "KiB", "MiB", "GiB", "TiB"];
          let value = count, unit = 0;
          while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
          return (unit === 0 ? value : value.toFixed(1)) + " " + units[unit];
        }

        function seconds(value) {
          if (value === undefined || value === null || !isFinite(value)) return "?";
          if (value < 60) return Math.round(value) + "s";
          if (value < 3600) return Math.floor(value / 60) + "m" + String(Math.round(value % 60)).padStart(2, "0") + "s";
          return Math.floor(value / 3600) + "h" + String(Math.floor((value % 3600) / 60)).padStart(2, "0") + "m";
        }

        function percent(transfer) {
          if (transfer.state === "finished") return 100;
          return transfer.size > 0 ? Math.floor((transfer.bytes * 100) / transfer.size) : 0;
        }

        async function api(path, options) {
          const response = await fetch(path, Object.assign({ headers: auth }, options || {}));
          if (response.status === 401) throw new Error("this gateway wants the network key: open /#key=KEY");
          if (!response.ok) throw new Error(path + ": " + response.status + " " + (await response.text()));
          return response.json();
        }

        function renderTransfers() {
          const body = document.querySelector("#transfers tbody");
          const rows = [];
          for (const transfer of transfers.values()) {
            const done = percent(transfer);
            const cancel = element("button", { class: "cancel" }, "cancel");
            cancel.onclick = () => api("/api/transfers/" + transfer.id, { method: "DELETE" }).catch(show);
            const bar = element("div", { class: "bar" }, element("div", { style: "width: " + done + "%" }));
            rows.push(element("tr", { class: "transfer", "data-id": transfer.id, "data-state": transfer.state },
              element("td", {}, transfer.name),
              element("td", { class: "state" }, transfer.state + (transfer.error ? ": " + transfer.error : "")),
              element("td", { class: "percent num" }, done + "%"),
              element("td", {}, bar),
              element("td", { class: "num" }, bytes(transfer.bytesPerSecond) + "/s"),
              element("td", { class: "num" }, String(transfer.peers)),
              element("td", { class: "num" }, transfer.state === "fetching" ? seconds(transfer.etaSeconds) : ""),
              element("td", {}, transfer.state === "fetching" || transfer.state === "starting" ? cancel : "")));
          }
          body.replaceChildren(...rows);
          document.getElementById("no-transfers").hidden = rows.length > 0;
        }

        function renderPeers(peers) {
          document.querySelector("#peers tbody").replaceChildren(...peers.map((peer) =>
            element("tr", { class: "peer", "data-id": peer.id },
              element("td", { class: "name" }, peer.name + (peer.observer ? " (observer)" : "")),
              element("td", {}, peer.id.slice(0, 8)),
              element("td", {}, peer.address),
              element("td", { class: "num" }, bytes(peer.sendBytesPerSecond) + "/s, " + bytes(peer.bytesSent)),
              element("td", { class: "num" }, bytes(peer.receiveBytesPerSecond) + "/s, " + bytes(peer.bytesReceived)),
              element("td", { class: "num" }, seconds(peer.lastSeenSecondsAgo) + " ago"))));
        }

        function chunkMap(bitmap, count) {
          const raw = atob(bitmap);
          const cells = Math.min(count, 256);
          const spans = [];
          for (let cell = 0; cell < cells; cell += 1) {
            const first = Math.floor((cell * count) / cells), last = Math.floor(((cell + 1) * count) / cells);
            let held = 0;
            for (let index = first; index < last; index += 1) {
              if (raw.charCodeAt(index >> 3) & (0x80 >> (index & 7))) held += 1;
            }
            const share = last > first ? held / (last - first) : 0;
            spans.push(element("span", { style: "background: rgba(51, 153, 102, " + (0.15 + 0.85 * share) + ")",
              title: "chunks " + first + "–" + (last - 1) + ": " + held + " held" }));
            if (share === 0) spans[spans.length - 1].style.background = "#eee";
          }
          return element("div", { class: "map" }, ...spans);
        }

        function renderFiles(files) {
          const container = document.getElementById("files");
          if (files.length === 0) {
            container.replaceChildren(element("p", { class: "empty" }, "No files in the swarm."));
            return;
          }
          container.replaceChildren(...files.map((file) => {
            const fetchButton = element("button", { class: "download" }, "download here");
            fetchButton.onclick = () => api("/api/transfers", { method: "POST",
              headers: Object.assign({ "Content-Type": "application/json" }, auth),
              body: JSON.stringify({ id: file.id }) }).then((info) => { transfers.set(info.id, info); renderTransfers(); })
              .catch(show);
            const link = element("a", { href: "/files/id/" + file.id }, file.name);
            return element("div", { class: "file", "data-id": file.id },
              element("div", {}, link,
                element("span", { class: "meta" }, bytes(file.size) + ", " + file.availableChunks + "/" + file.chunkCount +
                  " chunks in the swarm, " + file.chunksHere + " here "),
                file.chunksHere < file.chunkCount ? fetchButton : ""),
              ...file.holders.map((holder) => element("div", { class: "holder" },
                element("span", {}, holder.name + ", " + holder.address + " (" + holder.chunks + "/" + file.chunkCount + ")"),
                chunkMap(holder.bitmap, file.chunkCount))));
          }));
        }

        function show(error) {
          document.getElementById("status").textContent = String(error.message || error);
        }

        async function refresh() {
          try {
            const [peers, files] = await Promise.all([api("/api/peers"), api("/api/files")]);
            renderPeers(peers);
            renderFiles(files);
            document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
          } catch (error) { show(error); }
        }

        function handle(kind, data) {
          if (kind === "transfer") {
            const transfer = JSON.parse(data);
            const before = transfers.get(transfer.id);
            transfers.set(transfer.id, transfer);
            renderTransfers();
            if (!before || before.state !== transfer.state) refresh();
          } else if (kind === "peer") {
            refresh();
          }
        }

        async function listen() {
          for (;;) {
            try {
              const response = await fetch("/api/events", { headers: auth });
              if (!response.ok) throw new Error("events: " + response.status);
              const reader = response.body.getReader();
              const decoder = new TextDecoder();
              let buffer = "";
              for (;;) {
                const { value, done } = await reader.read();
                if (done) break;
                buffer += decoder.decode(value, { stream: true });
                let end;
                while ((end = buffer.indexOf("\\n\\n")) >= 0) {
                  const block = buffer.slice(0, end);
                  buffer = buffer.slice(end + 2);
                  let kind = "message", data = "";
                  for (const line of block.split("\\n")) {
                    if (line.startsWith("event: ")) kind = line.slice(7);
                    else if (line.startsWith("data: ")) data += line.slice(6);
                  }
                  if (data) handle(kind, data);
                }
              }
            } catch (error) { show(error); }
            await new Promise((resume) => setTimeout(resume, 2000));
          }
        }

        refresh();
        setInterval(refresh, 3000);
        listen();
        """
}
