// vid2world play: keys and mouse -> the model's action space, frames <- the server. No build step.
"use strict";
const $ = (id) => document.getElementById(id);
const KEYS = {  // multi-hot labels -> keys (ViZDoom's buttons, CS:GO-style names)
  forward: ["KeyW", "ArrowUp"], backward: ["KeyS", "ArrowDown"], strafe_left: ["KeyA"], strafe_right: ["KeyD"],
  attack: ["Space"], fire: ["Space"], use: ["KeyE"], jump: ["Space"], crouch: ["ControlLeft"],
  w: ["KeyW"], a: ["KeyA"], s: ["KeyS"], d: ["KeyD"], space: ["Space"], ctrl: ["ControlLeft"],
  shift: ["ShiftLeft"], r: ["KeyR"], "1": ["Digit1"], "2": ["Digit2"], "3": ["Digit3"],
};
const MOUSE_BUTTONS = { left: "Mouse0", right: "Mouse2" };  // a multi-hot group named "clicks" (CS:GO)
const state = { layout: null, held: new Set(), toggles: {}, sliders: {}, mouseDx: 0, mouseDy: 0, sent: "", paused: false,
                 arrivals: [], recording: false, frames: 0 };
window.play = state;  // for tests and the curious
const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);

function send(message) { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message)); }

// The sliders send their latest values at most every SETTINGS_MS: a drag from 3 to 50 steps is a few messages, not
// 47 that each wait for a frame's compute on the server (which dropped the player)
const SETTINGS_MS = 200;
const settings = { pending: null, timer: null, sent: 0 };
function sendSettings(change) {
  settings.pending = Object.assign(settings.pending || {}, change);
  if (settings.timer === null) settings.timer = setTimeout(flushSettings, SETTINGS_MS);
}
function flushSettings() {
  settings.timer = null;
  if (settings.pending) { send({ type: "settings", ...settings.pending }); settings.pending = null; settings.sent += 1; }
}
window.playSettings = settings;  // for tests

function setPaused(paused) { state.paused = paused; $("pause").textContent = paused ? "resume" : "pause"; }
function say(text) { $("message").textContent = text || ""; }

function turnIndex(values, target) {
  let best = 0;
  values.forEach((v, i) => { if (Math.abs(v - target) < Math.abs(values[best] - target)) best = i; });
  return best;
}

function groupValue(g) {
  const held = (codes) => codes.some((c) => state.held.has(c));
  if (g.kind === "multi_hot") {
    const codes = (l) => (g.name === "clicks" && MOUSE_BUTTONS[l] ? [MOUSE_BUTTONS[l]] : KEYS[l.toLowerCase()] || []);
    return g.labels.map((l) => (held(codes(l)) || state.toggles[`${g.name}.${l}`]) ? 1 : 0);
  }
  if (g.kind === "continuous") return g.labels.map((l) => state.sliders[`${g.name}.${l}`] || 0);
  if (g.values && g.values.length) {  // a turn (ViZDoom) or a mouse axis (CS:GO): arrows (shift: faster), the mouse
    const max = Math.max(...g.values.map(Math.abs));
    const positive = g.values.filter((v) => v > 0).sort((a, b) => a - b);
    const mid = positive[Math.floor(positive.length / 2)] || max;
    const vertical = g.name.endsWith("_y");
    const dir = vertical ? 0 : (held(["ArrowRight", "KeyE"]) ? 1 : 0) - (held(["ArrowLeft", "KeyQ"]) ? 1 : 0);
    let target = dir * (state.held.has("ShiftLeft") || state.held.has("ShiftRight") ? max : mid);
    const moved = vertical ? state.mouseDy : state.mouseDx;  // 40 px of mouse per frame reach the largest bin
    if (moved !== 0) target = Math.max(-max, Math.min(max, moved * max / 40));
    return turnIndex(g.values, target);
  }
  // discrete (Atari): compose UP/DOWN + RIGHT/LEFT + FIRE from what is held, fall back to shorter names
  const v = held(["ArrowUp", "KeyW"]) ? "UP" : held(["ArrowDown", "KeyS"]) ? "DOWN" : "";
  const h = held(["ArrowRight", "KeyD"]) ? "RIGHT" : held(["ArrowLeft", "KeyA"]) ? "LEFT" : "";
  const f = held(["Space"]) ? "FIRE" : "";
  const labels = g.labels.map((l) => l.toUpperCase());
  for (const name of [v + h + f, v + h, v + f, h + f, v, h, f]) {
    if (name && labels.includes(name)) return labels.indexOf(name);
  }
  const noop = labels.indexOf("NOOP");
  return noop >= 0 ? noop : 0;
}

function currentAction() {
  const groups = state.layout.groups;
  if (!groups.length) return 0;
  if (!state.layout.dict) return groupValue(groups[0]);
  return Object.fromEntries(groups.map((g) => [g.name, groupValue(g)]));
}

function sendAction() {
  if (!state.layout) return;
  const text = JSON.stringify(currentAction());
  if (text !== state.sent) { state.sent = text; send({ type: "action", action: JSON.parse(text) }); }
}

function buildPanel(layout) {
  const panel = $("panel");
  panel.textContent = "";
  for (const g of layout.groups) {
    if (g.kind === "continuous") {
      g.labels.forEach((l, i) => {
        const lo = g.low ? g.low[i] : -1, hi = g.high ? g.high[i] : 1;
        const label = document.createElement("label");
        label.textContent = `${g.name}.${l} `;
        const input = Object.assign(document.createElement("input"), { type: "range", min: lo, max: hi, step: (hi - lo) / 100, value: 0 });
        input.oninput = () => { state.sliders[`${g.name}.${l}`] = parseFloat(input.value); sendAction(); };
        label.appendChild(input);
        panel.appendChild(label);
      });
    } else if (g.kind === "multi_hot" && g.labels.some((l) => !KEYS[l.toLowerCase()])) {
      for (const l of g.labels) {
        const b = Object.assign(document.createElement("button"), { textContent: l });
        b.onclick = () => { const k = `${g.name}.${l}`; state.toggles[k] = !state.toggles[k]; b.classList.toggle("on"); sendAction(); };
        panel.appendChild(b);
      }
    }
  }
}

function draw(canvasId, url) {
  if (!url) return;
  const img = new Image();
  img.onload = () => { const c = $(canvasId); c.getContext("2d").drawImage(img, 0, 0, c.width, c.height); };
  img.src = url;
}

ws.onmessage = (event) => {
  const m = JSON.parse(event.data);
  if (m.type === "hello") {
    state.layout = m;
    $("name").textContent = m.name ? `: ${m.name}` : "";
    for (const id of ["model", "real"]) { $(id).width = m.frame_size[1]; $(id).height = m.frame_size[0]; }
    $("realview").hidden = !m.side_by_side;
    $("episodebox").hidden = !m.episodes;
    $("steps").value = m.steps; $("stepsval").textContent = m.steps;
    $("guidance").value = m.guidance; $("guidanceval").textContent = m.guidance;
    state.sent = JSON.stringify(m.noop);
    buildPanel(m);
  } else if (m.type === "frame") {
    state.frames = m.t;
    const now = performance.now();
    state.arrivals.push(now);
    state.arrivals = state.arrivals.filter((t) => now - t < 3000);
    if (state.arrivals.length > 1) {
      const span = (state.arrivals[state.arrivals.length - 1] - state.arrivals[0]) / 1000;
      state.fps = (state.arrivals.length - 1) / span;
      $("fps").textContent = state.fps.toFixed(1);
    }
    $("latency").textContent = m.latency_ms.toFixed(0);
    $("frame").textContent = m.t;
    $("state").textContent = m.paused ? "paused" : "playing";
    if (m.seed !== undefined) { $("seed").value = m.seed; setPaused(m.paused); }  // a reset's frame: it pauses
    draw("model", m.model);
    draw("real", m.real);
    if (state.mouseDx !== 0 || state.mouseDy !== 0) { state.mouseDx = 0; state.mouseDy = 0; sendAction(); }
  } else if (m.type === "recording") {
    const a = $("download");
    a.href = m.url; a.download = `vid2world-${m.frames}-frames.mp4`; a.hidden = false;
    a.textContent = `download mp4 (${m.frames} frames)`;
    state.lastRecording = m;
  } else if (m.type === "error" || m.type === "busy") {
    say(m.error);
  } else if (m.type === "settings") {
    say("");
  }
};
ws.onclose = () => { $("state").textContent = "disconnected"; };

const GAME_KEYS = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Space"]);
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT") return;
  if (GAME_KEYS.has(e.code)) e.preventDefault();
  state.held.add(e.code); sendAction();
});
document.addEventListener("keyup", (e) => { state.held.delete(e.code); sendAction(); });
window.addEventListener("blur", () => { state.held.clear(); sendAction(); });
$("model").addEventListener("click", () => { if ($("model").requestPointerLock) $("model").requestPointerLock(); });
document.addEventListener("mousemove", (e) => {
  if (document.pointerLockElement === $("model")) { state.mouseDx += e.movementX; state.mouseDy += e.movementY; sendAction(); }
});
document.addEventListener("mousedown", (e) => { if (document.pointerLockElement === $("model")) { state.held.add(`Mouse${e.button}`); sendAction(); } });
document.addEventListener("mouseup", (e) => { state.held.delete(`Mouse${e.button}`); sendAction(); });

$("pause").onclick = () => {
  setPaused(!state.paused);
  send({ type: "control", op: state.paused ? "pause" : "resume" });
};
$("step").onclick = () => { setPaused(true); send({ type: "control", op: "step" }); };
$("reset").onclick = () => {  // paused when the new start arrives; a reset the server refuses changes nothing
  const message = { type: "control", op: "reset", seed: parseInt($("seed").value, 10) || 0 };
  if (!$("episodebox").hidden) message.episode = parseInt($("episode").value, 10) || 0;
  send(message);
};
$("steps").oninput = () => { $("stepsval").textContent = $("steps").value; sendSettings({ steps: parseInt($("steps").value, 10) }); };
$("guidance").oninput = () => { $("guidanceval").textContent = $("guidance").value; sendSettings({ guidance: parseFloat($("guidance").value) }); };
$("record").onclick = () => {
  state.recording = !state.recording;
  send({ type: "record", op: state.recording ? "start" : "stop" });
  $("record").textContent = state.recording ? "stop recording" : "record";
  $("record").classList.toggle("on", state.recording);
};
