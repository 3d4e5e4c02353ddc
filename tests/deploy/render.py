#!/usr/bin/env python3
# tests/deploy/render.py DIR: DIR's kustomization rendered to stdout, for the
# tests where kubectl (with kustomize v4 or later) is missing: check.sh and
# tests/integration/posture.sh.
# A small kustomize: enough for deploy/kubernetes (resources, namespace,
# configMapGenerator with files/behavior/options, patches with JSON patch
# operations add/replace/remove, images). Anything else is an error, so a
# kustomization that outgrows this is noticed.
import copy, hashlib, json, os, sys, yaml

KNOWN = {"apiVersion", "kind", "namespace", "resources", "configMapGenerator",
         "patches", "images"}

def ptr(path):
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]

def json_patch(obj, ops):
    for op in ops:
        parts = ptr(op["path"])
        parent = obj
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        if isinstance(parent, list):
            i = len(parent) if last == "-" else int(last)
            if op["op"] == "add":
                parent.insert(i, op["value"])
            elif op["op"] == "replace":
                parent[i] = op["value"]
            elif op["op"] == "remove":
                del parent[i]
            else:
                raise SystemExit("unsupported op " + op["op"])
        else:
            if op["op"] in ("add", "replace"):
                if op["op"] == "replace" and last not in parent:
                    raise SystemExit("replace of a missing path " + op["path"])
                parent[last] = op["value"]
            elif op["op"] == "remove":
                del parent[last]
            else:
                raise SystemExit("unsupported op " + op["op"])

def render(d):
    k = yaml.safe_load(open(os.path.join(d, "kustomization.yaml")))
    extra = set(k) - KNOWN
    if extra:
        raise SystemExit("%s: kustomization fields this renderer does not know: %s" % (d, sorted(extra)))
    objs = []
    for r in k.get("resources", []):
        p = os.path.normpath(os.path.join(d, r))
        if os.path.isdir(p):
            objs += render(p)
        else:
            objs += [o for o in yaml.safe_load_all(open(p)) if o]
    for g in k.get("configMapGenerator", []):
        data = {}
        for f in g.get("files", []):
            key, _, path = f.rpartition("=") if "=" in f else (os.path.basename(f), "", f)
            data[key] = open(os.path.join(d, path)).read()
        beh = g.get("behavior", "create")
        cur = [o for o in objs if o["kind"] == "ConfigMap" and o.get("_gen") == g["name"]]
        if beh == "create":
            if cur:
                raise SystemExit("ConfigMap %s generated twice" % g["name"])
            o = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": g["name"]},
                 "data": data, "_gen": g["name"],
                 "_hash": not g.get("options", {}).get("disableNameSuffixHash", False)}
            objs.append(o)
        else:
            if len(cur) != 1:
                raise SystemExit("ConfigMap %s: %s without a base" % (g["name"], beh))
            if beh == "replace":
                cur[0]["data"] = data
            else:
                cur[0]["data"].update(data)
            if "options" in g:
                cur[0]["_hash"] = not g["options"].get("disableNameSuffixHash", False)
    for pt in k.get("patches", []):
        ops = yaml.safe_load(open(os.path.join(d, pt["path"])))
        t = pt["target"]
        hit = [o for o in objs if o["kind"] == t["kind"] and o["metadata"]["name"] == t["name"]]
        if len(hit) != 1:
            raise SystemExit("%s: patch %s matches %d objects" % (d, pt["path"], len(hit)))
        json_patch(hit[0], ops)
    for im in k.get("images", []):
        for o in objs:
            for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                if c["image"].split(":")[0] == im["name"]:
                    c["image"] = "%s:%s" % (im.get("newName", im["name"]), im.get("newTag", "latest"))
    if "namespace" in k:
        for o in objs:
            if o["kind"] != "Namespace":
                o["metadata"]["namespace"] = k["namespace"]
    return objs

def finish(objs):
    # Name suffix hashes, and the references to them, as kustomize does.
    names = {}
    for o in objs:
        if o["kind"] == "ConfigMap" and o.pop("_hash", False):
            h = hashlib.sha256(json.dumps(o["data"], sort_keys=True).encode()).hexdigest()[:10]
            names[o["metadata"]["name"]] = o["metadata"]["name"] + "-" + h
            o["metadata"]["name"] = names[o["metadata"]["name"]]
        o.pop("_gen", None)
        o.pop("_hash", None)
    for o in objs:
        for v in o.get("spec", {}).get("template", {}).get("spec", {}).get("volumes", []):
            if "configMap" in v and v["configMap"]["name"] in names:
                v["configMap"]["name"] = names[v["configMap"]["name"]]
    return objs

yaml.safe_dump_all(finish(render(sys.argv[1])), sys.stdout, sort_keys=False)
