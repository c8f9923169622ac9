(function () {
  "use strict";
  var source = document.getElementById("gdlab-data");
  var canvas = document.getElementById("explorer");
  if (!source || !canvas || !canvas.getContext) { return; }
  var data = JSON.parse(source.textContent);
  // every mini-batch cost, little-endian float32 in base64; NaN (non-finite) as null
  data.runs.forEach(function (run) {
    var bytes = atob(run.costs_f32), view = new DataView(new ArrayBuffer(bytes.length));
    for (var k = 0; k < bytes.length; k++) { view.setUint8(k, bytes.charCodeAt(k)); }
    run.costs = new Array(bytes.length / 4);
    for (var i = 0; i < run.costs.length; i++) {
      var c = view.getFloat32(4 * i, true);
      run.costs[i] = isFinite(c) ? c : null;
    }
  });
  window.gdlabData = data;  // the decoded series, for scripts and tests
  var ctx = canvas.getContext("2d");
  var betaInput = document.getElementById("beta");
  var betaOut = document.getElementById("beta-out");
  var rawBox = document.getElementById("show-raw");
  var logBox = document.getElementById("log-y");
  var correctBox = document.getElementById("bias-correction");
  var shown = data.runs.map(function () { return true; });
  var hoverT = null, frame = null;  // the mini-batch under the pointer; the last plot's geometry
  var wrap = document.createElement("div");
  wrap.className = "plot-wrap";
  canvas.parentNode.insertBefore(wrap, canvas);
  wrap.appendChild(canvas);
  var tip = document.createElement("div");
  tip.id = "explorer-hover";
  tip.className = "hover";
  tip.hidden = true;
  wrap.appendChild(tip);
  var toggles = document.getElementById("run-toggles");
  data.runs.forEach(function (run, i) {
    var label = document.createElement("label");
    var box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.addEventListener("change", function () { shown[i] = box.checked; schedule(); });
    var swatch = document.createElement("span");
    swatch.className = "swatch" + (run.dashed ? " dashed" : "");
    swatch.style.setProperty("--c", run.color);
    label.appendChild(box);
    label.appendChild(document.createTextNode(" "));
    label.appendChild(swatch);
    label.appendChild(document.createTextNode(run.label));  // text, never markup
    toggles.appendChild(label);
  });
  document.getElementById("explore").hidden = false;

  // gdlab.ewa: v_t = beta*v_{t-1} + (1-beta)*J_t ; corrected: v_t / (1 - beta^t);
  // non-finite J pass through and do not count in t
  function smooth(costs, beta, corrected) {
    var out = new Array(costs.length), v = 0, t = 0;
    for (var i = 0; i < costs.length; i++) {
      var c = costs[i];
      if (c === null || !isFinite(c)) { out[i] = null; continue; }
      t += 1;
      v = beta * v + (1 - beta) * c;
      out[i] = corrected ? v / (1 - Math.pow(beta, t)) : v;
    }
    return out;
  }
  function niceTicks(a, b, count) {
    var span = b - a, step = Math.pow(10, Math.floor(Math.log10(span / count)));
    var err = span / count / step;
    if (err >= 7.5) { step *= 10; } else if (err >= 3.5) { step *= 5; }
    else if (err >= 1.5) { step *= 2; }
    var ticks = [];
    for (var v = Math.ceil(a / step) * step; v <= b + step * 1e-9; v += step) { ticks.push(v); }
    return ticks;
  }
  function fmt(v) { return Number(v.toPrecision(3)).toString(); }
  var pending = false, draws = 0;
  function schedule() {
    if (!pending) { pending = true; window.requestAnimationFrame(draw); }
  }
  function draw() {
    pending = false;
    var beta = parseFloat(betaInput.value), log = logBox.checked, raw = rawBox.checked;
    var corrected = correctBox.checked;
    betaOut.textContent = beta.toFixed(3) + "  (about " +
      (beta < 1 ? Math.round(1 / (1 - beta)) : "\u221e") + " mini-batches)";
    var dpr = window.devicePixelRatio || 1;
    var W = canvas.clientWidth, H = canvas.clientHeight;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    var series = [], n = 1, lo = Infinity, hi = -Infinity;
    function extend(values) {
      for (var i = 0; i < values.length; i++) {
        var v = values[i];
        if (v !== null && isFinite(v) && (!log || v > 0)) {
          if (v < lo) { lo = v; } if (v > hi) { hi = v; }
        }
      }
    }
    data.runs.forEach(function (run, i) {
      if (!shown[i]) { return; }
      var s = smooth(run.costs, beta, corrected);
      series.push({ run: run, smooth: s });
      n = Math.max(n, run.costs.length);
      extend(s);
      if (raw) { extend(run.costs); }
    });
    draws += 1;
    // what the plot shows, for scripts and tests: the smoothed series as drawn
    window.gdlabExplorer = {
      draws: draws, beta: beta, corrected: corrected, log: log, raw: raw, hover: hoverT,
      series: series.map(function (s) { return { label: s.run.label, smooth: s.smooth }; })
    };
    var M = { l: 64, r: 14, t: 12, b: 42 };
    var pw = W - M.l - M.r, ph = H - M.t - M.b;
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillStyle = "#59636e";
    if (!series.length || !(hi >= lo)) {
      ctx.fillText("no run selected", M.l + 10, M.t + 20);
      frame = null; tip.hidden = true;
      return;
    }
    if (hi === lo) { hi = lo + (log ? lo : 1); }
    var f = log ? Math.log10 : function (v) { return v; };
    var y0 = f(lo), y1 = f(hi);
    var X = function (t) { return M.l + (t - 1) / Math.max(n - 1, 1) * pw; };
    var Y = function (v) { return M.t + (1 - (f(v) - y0) / (y1 - y0)) * ph; };
    ctx.strokeStyle = "#e1e4e8"; ctx.lineWidth = 1; ctx.textAlign = "right";
    var yticks = log ? [] : niceTicks(lo, hi, 5);
    if (log) {
      for (var e = Math.floor(y0); e <= Math.ceil(y1); e++) {
        var p = Math.pow(10, e);
        if (p >= lo && p <= hi) { yticks.push(p); }
      }
      if (yticks.length < 2) { yticks = [lo, hi]; }
    }
    yticks.forEach(function (v) {
      var y = Y(v);
      ctx.beginPath(); ctx.moveTo(M.l, y); ctx.lineTo(M.l + pw, y); ctx.stroke();
      ctx.fillText(fmt(v), M.l - 6, y + 4);
    });
    ctx.textAlign = "center";
    niceTicks(1, n, 6).forEach(function (t) {
      ctx.fillText(fmt(t), X(t), M.t + ph + 16);
    });
    ctx.fillText("iteration t (mini-batch)", M.l + pw / 2, H - 6);
    ctx.save(); ctx.translate(14, M.t + ph / 2); ctx.rotate(-Math.PI / 2);
    ctx.fillText("cost J", 0, 0); ctx.restore();
    ctx.strokeStyle = "#8c959f";
    ctx.strokeRect(M.l, M.t, pw, ph);
    ctx.save();
    ctx.beginPath(); ctx.rect(M.l, M.t, pw, ph); ctx.clip();
    // a long series is drawn through the first, lowest, highest and last of its points in
    // each pixel column (the same picture, a few thousand segments); the values are exact
    function path(values) {
      var open = false, perPixel = values.length / Math.max(pw, 1);
      ctx.beginPath();
      function to(i) {
        var v = values[i];
        if (v === null || !isFinite(v) || (log && v <= 0)) { open = false; return; }
        if (open) { ctx.lineTo(X(i + 1), Y(v)); } else { ctx.moveTo(X(i + 1), Y(v)); }
        open = true;
      }
      if (perPixel <= 4) {
        for (var i = 0; i < values.length; i++) { to(i); }
      } else {
        for (var col = 0; col < pw; col++) {
          var a = Math.floor(col * perPixel);
          var b = Math.min(values.length, Math.floor((col + 1) * perPixel));
          var lo = -1, hi = -1;
          for (var j = a; j < b; j++) {
            var v = values[j];
            if (v === null || !isFinite(v)) { continue; }
            if (lo < 0 || v < values[lo]) { lo = j; }
            if (hi < 0 || v > values[hi]) { hi = j; }
          }
          [a, Math.min(lo, hi), Math.max(lo, hi), b - 1].forEach(function (k) {
            if (k >= a) { to(k); }
          });
        }
      }
      ctx.stroke();
    }
    if (raw) {
      ctx.globalAlpha = 0.18; ctx.lineWidth = 0.8; ctx.setLineDash([]);
      series.forEach(function (s) { ctx.strokeStyle = s.run.color; path(s.run.costs); });
    }
    ctx.globalAlpha = 1; ctx.lineWidth = 1.8;
    series.forEach(function (s) {
      ctx.strokeStyle = s.run.color;
      ctx.setLineDash(s.run.dashed ? [7, 4] : []);
      path(s.smooth);
    });
    ctx.restore();
    frame = { l: M.l, pw: pw, n: n };
    showHover(series, X, Y, M.t, ph, W, corrected);
  }
  function showHover(series, X, Y, top, ph, W, corrected) {
    if (hoverT === null || hoverT > frame.n) { tip.hidden = true; return; }
    var x = X(hoverT);
    ctx.save();
    ctx.strokeStyle = "#59636e"; ctx.lineWidth = 1; ctx.setLineDash([3, 3]);
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + ph); ctx.stroke();
    ctx.restore();
    while (tip.firstChild) { tip.removeChild(tip.firstChild); }
    var head = document.createElement("div");
    head.textContent = "t = " + hoverT;
    tip.appendChild(head);
    series.forEach(function (s) {
      var v = s.smooth[hoverT - 1], c = s.run.costs[hoverT - 1];
      if (v === undefined) { return; }  // a shorter run
      if (v !== null && isFinite(v)) {
        ctx.fillStyle = s.run.color;
        ctx.beginPath(); ctx.arc(x, Y(v), 3.5, 0, 2 * Math.PI); ctx.fill();
      }
      var row = document.createElement("div");
      var swatch = document.createElement("span");
      swatch.className = "swatch" + (s.run.dashed ? " dashed" : "");
      swatch.style.setProperty("--c", s.run.color);
      row.appendChild(swatch);
      row.appendChild(document.createTextNode(s.run.label + ": " +
        (corrected ? "v\u0302" : "v") + " = " + num(v) + ", J = " + num(c)));
      tip.appendChild(row);
    });
    tip.hidden = false;
    if (x < W / 2) { tip.style.left = (x + 12) + "px"; tip.style.right = ""; }
    else { tip.style.right = (W - x + 12) + "px"; tip.style.left = ""; }
  }
  function num(v) {
    if (v === null || v === undefined || !isFinite(v)) { return "\u2014"; }
    return Number(v.toPrecision(5)).toString();
  }
  canvas.addEventListener("mousemove", function (event) {
    if (!frame) { return; }
    var x = event.clientX - canvas.getBoundingClientRect().left;
    var t = Math.round(1 + (x - frame.l) / frame.pw * Math.max(frame.n - 1, 1));
    hoverT = x < frame.l || x > frame.l + frame.pw ? null : Math.max(1, Math.min(frame.n, t));
    schedule();
  });
  canvas.addEventListener("mouseleave", function () { hoverT = null; schedule(); });
  [betaInput, rawBox, logBox, correctBox].forEach(function (input) {
    input.addEventListener("input", schedule);
    input.addEventListener("change", schedule);
  });
  window.addEventListener("resize", schedule);
  schedule();
})();
