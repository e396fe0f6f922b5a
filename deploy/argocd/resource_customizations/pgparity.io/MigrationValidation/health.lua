-- Health of a pgparity MigrationValidation (pgparity.io/v1alpha1): the verdict as a deploy gate.
--
-- Healthy   the migration was VALIDATED on a staging clone.
-- Degraded  REJECTED, or Failed (its Job failed or ran out of time, the spec or the migration is
--           invalid): final for this generation, so a PreSync hook fails the sync.
-- Progressing  everything else: no status yet, a status for an older generation (a changed
--           migration must never pass or fail on the old verdict), Pending, WaitingForClone,
--           Running, or being deleted.
--
-- Runs with Argo CD's default libraries for argocd-cm scripts (base, table, package, a safe os):
-- no string library, so strings are only compared and joined. Every field is checked for its
-- type before it is indexed: an error here would make the health Unknown, not Progressing.

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

local function condition(status, wanted)
  local conditions = field(status, "conditions")
  if type(conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(conditions) do
    if field(c, "type") == wanted then
      return c
    end
  end
  return nil
end

-- The first error finding (the operator lists errors first), as "REJECTED (rule): message".
local function rejection(status)
  local findings = field(status, "findings")
  if type(findings) ~= "table" then
    return nil
  end
  local chosen = nil
  for _, f in ipairs(findings) do
    if text(field(f, "message")) ~= nil and (chosen == nil or field(f, "severity") == "error") then
      chosen = f
      if field(f, "severity") == "error" then
        break
      end
    end
  end
  if chosen == nil then
    return nil
  end
  local rule = text(field(chosen, "rule"))
  if rule == nil then
    return "REJECTED: " .. chosen.message
  end
  return "REJECTED (" .. rule .. "): " .. chosen.message
end

-- "Phase (Reason): message", from the phase, the Validated condition and status.message.
local function described(status, phase)
  local reason = text(field(condition(status, "Validated"), "reason"))
  local message = text(field(status, "message")) or text(field(condition(status, "Validated"), "message"))
  local out = phase
  if reason ~= nil and reason ~= phase then
    out = out .. " (" .. reason .. ")"
  end
  if message ~= nil then
    out = out .. ": " .. message
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
  local phase = text(field(status, "phase")) or "Unknown"
  local verdict = field(status, "verdict")
  if phase == "Completed" and verdict == "VALIDATED" then
    return "Healthy", text(field(status, "message")) or "VALIDATED"
  end
  if phase == "Completed" and verdict == "REJECTED" then
    return "Degraded", rejection(status) or text(field(status, "message")) or "REJECTED"
  end
  if phase == "Failed" then
    return "Degraded", described(status, phase)
  end
  return "Progressing", described(status, phase)
end

local hs = {}
hs.status, hs.message = health(obj)
return hs
