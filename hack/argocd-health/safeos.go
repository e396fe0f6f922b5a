package main

import (
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Argo CD's "safe" os library: os.time and os.date only (nothing that exits, reads files or
// runs commands). os.date here knows the formats health checks use: "*t"/"!*t" and none.
var safeOsFuncs = map[string]lua.LGFunction{"time": osTime, "date": osDate}

func openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.OsLibName, safeOsFuncs))
	return 1
}

func loadSafeOs(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), safeOsFuncs))
	return 1
}

func osTime(l *lua.LState) int {
	if l.GetTop() == 0 {
		l.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	t := l.CheckTable(1)
	field := func(key string, fallback int) int {
		if n, ok := t.RawGetString(key).(lua.LNumber); ok {
			return int(n)
		}
		return fallback
	}
	when := time.Date(field("year", -1), time.Month(field("month", -1)), field("day", -1),
		field("hour", 12), field("min", 0), field("sec", 0), 0, time.Local)
	l.Push(lua.LNumber(when.Unix()))
	return 1
}

func osDate(l *lua.LState) int {
	now, format := time.Now(), "%c"
	if l.GetTop() >= 1 {
		format = l.CheckString(1)
	}
	if len(format) > 0 && format[0] == '!' {
		now, format = now.UTC(), format[1:]
	}
	if l.GetTop() >= 2 {
		now = time.Unix(l.CheckInt64(2), 0)
	}
	if format == "*t" {
		t := l.NewTable()
		for key, value := range map[string]int{
			"year": now.Year(), "month": int(now.Month()), "day": now.Day(), "hour": now.Hour(),
			"min": now.Minute(), "sec": now.Second(), "wday": int(now.Weekday()) + 1, "yday": 0,
		} {
			t.RawSetString(key, lua.LNumber(value))
		}
		t.RawSetString("isdst", lua.LFalse)
		l.Push(t)
		return 1
	}
	l.Push(lua.LString(now.Format(time.ANSIC)))
	return 1
}
