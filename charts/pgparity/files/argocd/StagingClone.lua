-- Health of a pgparity StagingClone (pgparity.io/v1alpha1).
--
-- Healthy      Ready: provisioned, seeded, a replica streaming from the primary.
-- Degraded     only what will not heal by itself: a Stalled condition, phase Failed (an invalid
--              spec, a failed seeding Job), or a database that must never be used as a clone
--              (NotAClone, NotAPrimary) or has no replica DSN (NoReplicaDsn). A Degraded resource
--              fails an Argo CD sync, so nothing that may still come right is Degraded.
-- Progressing  everything else: no status yet, a status for an older generation, provisioning,
--              seeding, an unreachable server or a replica that does not stream yet, deletion.
--
-- Runs with Argo CD's default libraries for argocd-cm scripts (base, table, package, a safe os):
-- no string library. Every field is checked for its type before it is indexed.

local permanent = {
  InvalidSpec = true,
  SeedJobFailed = true,
  NotAClone = true,
  NotAPrimary = true,
  NoReplicaDsn = true,
}

local function field(value, key)
  if type(value) ~= "table" then
    return nil
  end
  return value[key]
end

local function text(value)
  if type(value) == "string" and value ~= "" then
    return value
  end
  return nil
end

local function conditions(status)
  local found = {}
  local list = field(status, "conditions")
  if type(list) ~= "table" then
    return found
  end
  for _, c in ipairs(list) do
    local kind = text(field(c, "type"))
    if kind ~= nil then
      found[kind] = c
    end
  end
  return found
end

-- "What (Reason): message", from a condition (and status.message when it has none).
local function described(what, c, status)
  local reason = text(field(c, "reason"))
  local message = text(field(c, "message")) or text(field(status, "message"))
  local out = what
  if reason ~= nil and reason ~= what then
    out = out .. " (" .. reason .. ")"
  end
  if message ~= nil then
    out = out .. ": " .. message
  end
  return out
end

-- The first condition, in the order the clone comes up, that is not True for a permanent reason.
local function permanent_problem(found)
  for _, kind in ipairs({"Provisioned", "Seeded", "ReplicaStreaming", "Ready"}) do
    local c = found[kind]
    if field(c, "status") ~= "True" and permanent[field(c, "reason")] == true then
      return c
    end
  end
  return nil
end

local function ready_message(status)
  local out = "Ready"
  local replicas = field(status, "replicasReady")
  if type(replicas) == "number" then
    out = out .. ": " .. tostring(replicas) .. " replica(s) streaming"
  end
  local digest = text(field(status, "schemaDigestShort"))
  if digest ~= nil then
    out = out .. ", schema " .. digest
  end
  return out
end

local function health(obj)
  local metadata = field(obj, "metadata")
  if field(metadata, "deletionTimestamp") ~= nil then
    return "Progressing", "Being deleted"
  end
  local status = field(obj, "status")
  if type(status) ~= "table" or field(status, "phase") == nil then
    return "Progressing", "Waiting for the pgparity operator"
  end
  local generation = field(metadata, "generation")
  local observed = field(status, "observedGeneration")
  if type(generation) == "number" and observed ~= generation then
    local seen = "has no observedGeneration"
    if observed ~= nil then
      seen = "is for generation " .. tostring(observed)
    end
    return "Progressing", "Waiting for the pgparity operator to observe generation "
      .. tostring(generation) .. " (the status " .. seen .. ")"
  end
  local found = conditions(status)
  local phase = text(field(status, "phase")) or "Unknown"
  if field(found.Stalled, "status") == "True" then
    return "Degraded", described("Stalled", found.Stalled, nil)
  end
  if phase == "Ready" and field(found.Ready, "status") == "True" then
    return "Healthy", ready_message(status)
  end
  if phase == "Failed" then
    return "Degraded", described(phase, found.Ready, status)
  end
  local problem = permanent_problem(found)
  if problem ~= nil then
    return "Degraded", described(phase, problem, nil)
  end
  return "Progressing", described(phase, found.Ready, status)
end

local hs = {}
hs.status, hs.message = health(obj)
return hs
