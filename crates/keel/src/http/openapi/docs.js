
"use strict";
(function () {
  var METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
  var doc = null;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] === undefined || attrs[k] === null) return;
        if (k === "class") node.className = attrs[k];
        else if (k === "text") node.textContent = attrs[k];
        else node.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  // Text with `code spans`, split into paragraphs on blank lines.
  function prose(text, cls) {
    var wrap = el("div", { class: cls || "prose" });
    String(text || "").split(/\n\s*\n/).forEach(function (para) {
      var p = el("p");
      para.split("`").forEach(function (part, i) {
        p.appendChild(i % 2 ? el("code", { text: part }) : document.createTextNode(part));
      });
      wrap.appendChild(p);
    });
    return wrap;
  }

  function inline(text) {
    var span = el("span");
    String(text || "").split("`").forEach(function (part, i) {
      span.appendChild(i % 2 ? el("code", { text: part }) : document.createTextNode(part));
    });
    return span;
  }

  // Resolves a local reference ("#/components/...").
  function resolve(ref) {
    if (typeof ref !== "string" || ref.charAt(0) !== "#") return null;
    var node = doc;
    ref.slice(2).split("/").forEach(function (part) {
      part = part.replace(/~1/g, "/").replace(/~0/g, "~");
      node = node && typeof node === "object" ? node[part] : undefined;
    });
    return node === undefined ? null : node;
  }

  function refName(ref) {
    return ref.split("/").pop();
  }

  // A reference object merged over what it points to (OpenAPI 3.1 lets it override the
  // description and summary).
  function deref(obj) {
    if (!obj || !obj.$ref) return obj || {};
    var target = resolve(obj.$ref) || {};
    var out = {};
    Object.keys(target).forEach(function (k) { out[k] = target[k]; });
    if (obj.description) out.description = obj.description;
    if (obj.summary) out.summary = obj.summary;
    return out;
  }

  function schemaLink(ref) {
    var name = refName(ref);
    return el("a", { href: "#schema-" + name, class: "mono", text: name });
  }

  // A one-line type: "string (date-time) | null", "array of Job", "map of QueueStats" …
  function typeOf(s) {
    var span = el("span", { class: "mono" });
    if (!s || typeof s !== "object" || Object.keys(s).length === 0 ||
        (Object.keys(s).length === 1 && s.description)) {
      span.textContent = "any JSON";
      return span;
    }
    if (s.$ref) { span.appendChild(schemaLink(s.$ref)); return span; }
    var types = Array.isArray(s.type) ? s.type : (s.type ? [s.type] : []);
    var parts = [];
    types.forEach(function (t) {
      if (t === "array") {
        var a = el("span", {}, ["array of "]);
        a.appendChild(typeOf(s.items));
        parts.push(a);
      } else if (t === "object" && s.additionalProperties && typeof s.additionalProperties === "object") {
        var m = el("span", {}, ["map of "]);
        m.appendChild(typeOf(s.additionalProperties));
        parts.push(m);
      } else {
        parts.push(document.createTextNode(t + (s.format && t !== "null" ? " (" + s.format + ")" : "")));
      }
    });
    if (!parts.length && s.const !== undefined) parts.push(document.createTextNode(JSON.stringify(s.const)));
    if (!parts.length) parts.push(document.createTextNode("any JSON"));
    parts.forEach(function (p, i) {
      if (i) span.appendChild(document.createTextNode(" | "));
      span.appendChild(p);
    });
    return span;
  }

  function constraints(s) {
    if (!s || typeof s !== "object") return null;
    var out = [];
    if (s.enum) out.push("one of: " + s.enum.map(function (v) { return JSON.stringify(v); }).join(", "));
    if (s.const !== undefined) out.push("always " + JSON.stringify(s.const));
    if (s.default !== undefined) out.push("default " + JSON.stringify(s.default));
    if (s.minimum !== undefined) out.push("≥ " + s.minimum);
    if (s.maximum !== undefined) out.push("≤ " + s.maximum);
    if (s.minLength !== undefined) out.push("length ≥ " + s.minLength);
    if (s.maxLength !== undefined) out.push("length ≤ " + s.maxLength);
    if (s.pattern) out.push("pattern " + s.pattern);
    if (s.additionalProperties === false) out.push("no other fields");
    return out.length ? el("div", { class: "constraint", text: out.join(" · ") }) : null;
  }

  // A schema: its type line and, for an object, a table of its properties. A reference at the
  // top is expanded once, so bodies show their fields in place.
  function schemaBlock(schema, expand) {
    var box = el("div", { class: "schema" });
    var s = schema || {};
    if (s.$ref && expand) {
      box.appendChild(el("div", { class: "title" }, [schemaLink(s.$ref)]));
      if (s.description) box.appendChild(prose(s.description, "muted"));
      s = resolve(s.$ref) || {};
      if (s.description) box.appendChild(prose(s.description, "muted"));
    } else {
      box.appendChild(el("div", { class: "title" }, [typeOf(s)]));
      if (s.description) box.appendChild(prose(s.description, "muted"));
    }
    var c = constraints(s);
    if (c) box.appendChild(c);
    if (s.type === "array" && s.items && s.items.$ref && expand) {
      box.appendChild(schemaBlock(s.items, true));
    }
    if (s.additionalProperties && s.additionalProperties.$ref && expand) {
      box.appendChild(schemaBlock(s.additionalProperties, true));
    }
    if (s.properties) box.appendChild(propertyTable(s));
    return box;
  }

  function propertyTable(s) {
    var required = s.required || [];
    var table = el("table", {}, [el("tr", {}, [
      el("th", { text: "field" }), el("th", { text: "type" }), el("th", { text: "description" })
    ])]);
    Object.keys(s.properties).forEach(function (name) {
      var p = s.properties[name] || {};
      var desc = el("td");
      if (p.description) desc.appendChild(inline(p.description));
      if (p.$ref && !p.description) {
        var target = resolve(p.$ref);
        if (target && target.description) desc.appendChild(inline(target.description));
      }
      var c = constraints(p);
      if (c) desc.appendChild(c);
      if (p.type === "object" && p.properties) desc.appendChild(schemaBlock(p, false));
      table.appendChild(el("tr", {}, [
        el("td", { class: "name" }, [
          el("code", { text: name }),
          required.indexOf(name) >= 0 ? el("span", { class: "req", text: "required" }) : null
        ]),
        el("td", {}, [typeOf(p)]),
        desc
      ]));
    });
    return table;
  }

  function security(op) {
    var alternatives = op.security !== undefined ? op.security : (doc.security || []);
    var schemes = (doc.components && doc.components.securitySchemes) || {};
    var box = el("div");
    if (!alternatives.length) {
      box.appendChild(el("span", { class: "muted", text: "None: public." }));
      return box;
    }
    var optional = alternatives.some(function (a) { return Object.keys(a).length === 0; });
    var list = el("ul");
    alternatives.forEach(function (a) {
      var names = Object.keys(a);
      if (!names.length) return;
      names.forEach(function (n) {
        var scheme = schemes[n] || {};
        var kind = scheme.type === "http" ? scheme.scheme + (scheme.bearerFormat ? " (" + scheme.bearerFormat + ")" : "") : scheme.type;
        list.appendChild(el("li", {}, [el("code", { text: n }), " — " + (kind || "") + ": ",
          inline(scheme.description || "")]));
      });
    });
    if (optional) box.appendChild(el("div", { class: "muted", text: "Optional; when configured, one of:" }));
    else if (alternatives.length > 1) box.appendChild(el("div", { class: "muted", text: "One of:" }));
    box.appendChild(list);
    return box;
  }

  function parameters(op, pathItem) {
    var params = (pathItem.parameters || []).concat(op.parameters || []).map(deref);
    if (!params.length) return null;
    var table = el("table", {}, [el("tr", {}, [
      el("th", { text: "name" }), el("th", { text: "in" }), el("th", { text: "type" }),
      el("th", { text: "description" })
    ])]);
    params.forEach(function (p) {
      var desc = el("td", {}, [inline(p.description || "")]);
      var c = constraints(p.schema);
      if (c) desc.appendChild(c);
      table.appendChild(el("tr", {}, [
        el("td", { class: "name" }, [el("code", { text: p.name }),
          p.required ? el("span", { class: "req", text: "required" }) : null]),
        el("td", { text: p.in }),
        el("td", {}, [typeOf(p.schema)]),
        desc
      ]));
    });
    return table;
  }

  // Bodies: their schema expanded in place, except the shared problem, which is linked.
  function content(media) {
    var box = el("div");
    Object.keys(media || {}).forEach(function (type) {
      var schema = media[type] && media[type].schema;
      var line = el("div", { class: "ctype mono", text: type });
      box.appendChild(line);
      if (!schema) return;
      if (schema.$ref && refName(schema.$ref) === "Problem") {
        line.appendChild(document.createTextNode(" → "));
        line.appendChild(schemaLink(schema.$ref));
      } else {
        box.appendChild(schemaBlock(schema, true));
      }
    });
    return box;
  }

  function responses(op) {
    var table = el("table", {}, [el("tr", {}, [
      el("th", { text: "status" }), el("th", { text: "answer" })
    ])]);
    Object.keys(op.responses || {}).sort().forEach(function (code) {
      var r = deref(op.responses[code]);
      var cell = el("td", {}, [inline(r.description || "")]);
      // Headers of a success are explained; those of an error (the request id, the challenge)
      // are named, explained once in the introduction.
      var headers = Object.keys(r.headers || {});
      if (headers.length && code.charAt(0) === "2") {
        var list = el("ul");
        headers.forEach(function (h) {
          var header = deref(r.headers[h]);
          list.appendChild(el("li", {}, [el("code", { text: h }), " ", inline(header.description || "")]));
        });
        cell.appendChild(el("div", { class: "muted", text: "Headers:" }));
        cell.appendChild(list);
      } else if (headers.length) {
        var names = el("div", { class: "muted" }, ["Headers: "]);
        headers.forEach(function (h, i) {
          if (i) names.appendChild(document.createTextNode(", "));
          names.appendChild(el("code", { text: h }));
        });
        cell.appendChild(names);
      }
      if (r.content) cell.appendChild(content(r.content));
      table.appendChild(el("tr", {}, [
        el("td", { class: "status-code s" + code.charAt(0), text: code }),
        cell
      ]));
    });
    return table;
  }

  function operation(path, method, op, pathItem) {
    var id = "op-" + (op.operationId || method + path.replace(/[^A-Za-z0-9]+/g, "-"));
    var art = el("article", { class: "op", id: id }, [
      el("header", {}, [
        el("span", { class: "method " + method, text: method }),
        el("span", { class: "path", text: path }),
        el("span", { class: "summary", text: op.summary || "" })
      ])
    ]);
    if (op.description) art.appendChild(prose(op.description));
    art.appendChild(el("h4", { text: "Authentication" }));
    art.appendChild(security(op));
    var params = parameters(op, pathItem);
    if (params) {
      art.appendChild(el("h4", { text: "Parameters" }));
      art.appendChild(params);
    }
    if (op.requestBody) {
      var body = deref(op.requestBody);
      art.appendChild(el("h4", { text: "Request body" + (body.required ? " (required)" : "") }));
      if (body.description) art.appendChild(prose(body.description));
      art.appendChild(content(body.content));
    }
    art.appendChild(el("h4", { text: "Responses" }));
    art.appendChild(responses(op));
    art.setAttribute("data-search", [method, path, op.summary, op.operationId].join(" ").toLowerCase());
    return { node: art, id: id };
  }

  function render() {
    var main = document.getElementById("main");
    var nav = document.getElementById("nav");
    main.textContent = "";
    nav.textContent = "";
    var info = doc.info || {};
    document.getElementById("title").textContent = (info.title || "API") + " API";
    document.getElementById("version").textContent = "v" + (info.version || "?") + " · OpenAPI " + doc.openapi;
    document.title = (info.title || "API") + " API documentation";
    var intro = el("section", { class: "intro" });
    if (info.summary) intro.appendChild(el("p", { text: info.summary }));
    if (info.description) intro.appendChild(prose(info.description));
    main.appendChild(intro);

    // Operations grouped by tag, in the document's tag order, then any other tag.
    var groups = {};
    var order = (doc.tags || []).map(function (t) { return t.name; });
    Object.keys(doc.paths || {}).forEach(function (path) {
      var item = doc.paths[path];
      METHODS.forEach(function (m) {
        if (!item[m]) return;
        var tag = (item[m].tags && item[m].tags[0]) || "Other";
        if (order.indexOf(tag) < 0) order.push(tag);
        (groups[tag] = groups[tag] || []).push({ path: path, method: m, op: item[m], item: item });
      });
    });
    order.forEach(function (tag) {
      var ops = groups[tag];
      if (!ops) return;
      var meta = (doc.tags || []).filter(function (t) { return t.name === tag; })[0] || {};
      var section = el("section", { class: "tag", id: "tag-" + tag }, [el("h2", { text: tag })]);
      if (meta.description) section.appendChild(el("p", {}, [inline(meta.description)]));
      var list = el("ul");
      ops.forEach(function (o) {
        var r = operation(o.path, o.method, o.op, o.item);
        section.appendChild(r.node);
        list.appendChild(el("li", { "data-for": r.id }, [el("a", { href: "#" + r.id }, [
          el("span", { class: "method " + o.method, text: o.method }),
          el("span", { class: "path", text: o.path })
        ])]));
      });
      nav.appendChild(el("h3", {}, [el("a", { href: "#tag-" + tag, text: tag })]));
      nav.appendChild(list);
      main.appendChild(section);
    });

    var schemas = (doc.components && doc.components.schemas) || {};
    var names = Object.keys(schemas);
    if (names.length) {
      var section = el("section", { class: "tag schemas", id: "schemas" }, [el("h2", { text: "Schemas" })]);
      var list = el("ul");
      names.forEach(function (name) {
        var art = el("article", { class: "op", id: "schema-" + name }, [
          el("header", {}, [el("span", { class: "path", text: name })])
        ]);
        art.appendChild(schemaBlock(schemas[name], false));
        section.appendChild(art);
        list.appendChild(el("li", {}, [el("a", { href: "#schema-" + name }, [el("span", { class: "path", text: name })])]));
      });
      nav.appendChild(el("h3", {}, [el("a", { href: "#schemas", text: "Schemas" })]));
      nav.appendChild(list);
      main.appendChild(section);
    }
    if (location.hash) {
      var target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
      if (target) target.scrollIntoView();
    }
  }

  function filter(text) {
    var q = text.trim().toLowerCase();
    Array.prototype.forEach.call(document.querySelectorAll("article.op[data-search]"), function (art) {
      var hit = !q || art.getAttribute("data-search").indexOf(q) >= 0;
      art.classList.toggle("hidden", !hit);
      var link = document.querySelector('nav li[data-for="' + art.id + '"]');
      if (link) link.classList.toggle("hidden", !hit);
    });
    Array.prototype.forEach.call(document.querySelectorAll("section.tag:not(.schemas)"), function (sec) {
      var any = sec.querySelector("article.op:not(.hidden)");
      sec.classList.toggle("hidden", !any);
    });
  }

  document.getElementById("filter").addEventListener("input", function (e) {
    filter(e.target.value);
  });

  fetch("openapi.json", { headers: { accept: "application/json" }, credentials: "same-origin" })
    .then(function (r) {
      if (!r.ok) throw new Error("openapi.json answered " + r.status);
      return r.json();
    })
    .then(function (d) { doc = d; render(); })
    .catch(function (e) {
      var status = document.getElementById("status");
      if (status) {
        status.className = "status error";
        status.textContent = "Could not load openapi.json: " + e.message;
      }
    });
})();
