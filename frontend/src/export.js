// File > Export as Python: fetch the working graph as a standalone PyTorch3D script and download it.
// A graph that cannot be exported answers 400 with the problems (each names its node); the caller shows them.

export async function exportPython(api, name) {
  const res = await fetch(api.url("/export"), { headers: api.headers() });
  if (!res.ok) {
    let data = {};
    try { data = await res.json(); } catch (e) { data = { error: `${res.status} ${res.statusText}` }; }
    throw new Error(data.error || `${res.status}`);
  }
  const url = URL.createObjectURL(new Blob([await res.text()], { type: "text/x-python" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = `${(name || "graph").replace(/[^\w-]/g, "_")}.py`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
