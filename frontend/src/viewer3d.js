// The 3D view: meshes and point clouds from "mesh" / "points" previews (packed float32 arrays, see
// nodegraph/previews.py), drawn with the three.js that NiceGUI ships for ui.scene, with orbit controls.
import { THREE, OrbitControls } from "nicegui-scene";

export class Viewer3D {
  constructor(container) {
    this.container = container;
    this.objects = {};
    this.framed = false;
    this.renderer = new THREE.WebGLRenderer({ antialias: true, alpha: true });
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    container.appendChild(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(45, 1, 0.01, 1000);
    this.camera.position.set(2.5, 2, 3);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.addEventListener("change", () => this.render());
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x333344, 1.6));
    const sun = new THREE.DirectionalLight(0xffffff, 1.6);
    sun.position.set(3, 5, 4);
    this.scene.add(sun);
    this.grid = new THREE.GridHelper(4, 8, 0x555566, 0x333340);
    this.scene.add(this.grid);
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(container);
    this.fit();
  }
  fit() {
    const w = this.container.clientWidth || 300, h = this.container.clientHeight || 220;
    this.renderer.setSize(w, h, false);
    this.renderer.domElement.style.width = "100%";
    this.renderer.domElement.style.height = "100%";
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.render();
  }
  render() {
    this.renderer.render(this.scene, this.camera);
  }
  show(key, event) {
    const f32 = new Float32Array(event.data);
    let obj = this.objects[key];
    const geometry = new THREE.BufferGeometry();
    if (event.kind === "mesh") {
      const V = event.verts, F = event.faces;
      geometry.setAttribute("position", new THREE.BufferAttribute(f32.slice(0, V * 3), 3));
      geometry.setIndex(new THREE.BufferAttribute(new Uint32Array(event.data, V * 12, F * 3).slice(), 1));
      geometry.setAttribute("color", new THREE.BufferAttribute(new Float32Array(event.data, V * 12 + F * 12, V * 3).slice(), 3));
      geometry.computeVertexNormals();
      if (!obj || obj.type !== "Mesh") {
        this.remove(key);
        obj = new THREE.Mesh(geometry, new THREE.MeshStandardMaterial({ vertexColors: true, roughness: 0.7,
                                                                     side: THREE.DoubleSide }));
      }
    } else {
      const N = event.points;
      geometry.setAttribute("position", new THREE.BufferAttribute(f32.slice(0, N * 3), 3));
      geometry.setAttribute("color", new THREE.BufferAttribute(f32.slice(N * 3, N * 6), 3));
      if (!obj || obj.type !== "Points") {
        this.remove(key);
        obj = new THREE.Points(geometry, new THREE.PointsMaterial({ size: 0.015, vertexColors: true }));
      }
    }
    if (obj.geometry !== geometry) { obj.geometry.dispose(); obj.geometry = geometry; }
    const added = !obj.parent;
    if (added) this.scene.add(obj);
    this.objects[key] = obj;
    if (added || !this.framed) this.frame();  // a new object: frame everything shown; updates keep the view
    this.render();
  }
  only(keys) {
    for (const [k, o] of Object.entries(this.objects)) o.visible = keys.includes(k);
    this.frame();
  }
  remove(key) {
    const o = this.objects[key];
    if (o) { this.scene.remove(o); o.geometry.dispose(); delete this.objects[key]; }
  }
  clear() {
    for (const k of Object.keys(this.objects)) this.remove(k);
    this.framed = false;
    this.render();
  }
  frame() {
    const box = new THREE.Box3();
    for (const o of Object.values(this.objects)) if (o.visible) box.expandByObject(o);
    if (box.isEmpty()) return;
    const sphere = box.getBoundingSphere(new THREE.Sphere());
    const d = Math.max(sphere.radius, 1e-3) / Math.sin((this.camera.fov * Math.PI) / 360);
    const dir = new THREE.Vector3(0.6, 0.5, 1).normalize();
    this.camera.position.copy(sphere.center).addScaledVector(dir, d * 1.1);
    this.camera.near = d / 100; this.camera.far = d * 100;
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(sphere.center);
    this.controls.update();
    this.grid.position.y = box.min.y;
    this.grid.scale.setScalar(sphere.radius);
    this.framed = true;
    this.render();
  }
  dispose() {
    this.resize.disconnect();
    this.clear();
    this.renderer.dispose();
  }
}
