package script

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dop251/goja"

	"github.com/rtmphub/rtmphub/session/internal/confine"
)

// File gives a script the files of its own application folder, as FMS's
// File class did (a subset): new File(path) with a path relative to the
// app folder ("/" is the app folder; ".." cannot leave it, nor can a
// symbolic link). I/O runs on the instance's loop: meant for small files
// (logs, settings, lists).

const maxOpenFiles = 64

type jsFile struct {
	a    *App
	path string // absolute, inside the app folder
	f    *os.File
	r    *bufio.Reader
}

// resolve maps a script path (of File or load()) into the app folder:
// ".." stops at the folder, and a symbolic link may point anywhere in it
// but not out of it (confine.Path, the rule of recordings).
func (a *App) resolve(p string) (string, error) {
	full := filepath.Join(a.dir, filepath.Clean("/"+p))
	if _, err := confine.Path(a.dir, full); err != nil {
		if errors.Is(err, confine.ErrOutside) {
			return "", fmt.Errorf("path leaves the application folder: %w", err)
		}
		return "", err
	}
	return full, nil
}

func (a *App) openFiles() int {
	n := 0
	for _, f := range a.files {
		if f.f != nil {
			n++
		}
	}
	return n
}

func (a *App) setupFile() {
	vm := a.vm
	ctor := func(call goja.ConstructorCall) *goja.Object {
		p, err := a.resolve(call.Argument(0).String())
		if err != nil {
			panic(vm.NewGoError(err))
		}
		jf := &jsFile{a: a, path: p}
		o := call.This
		rel, _ := filepath.Rel(a.dir, p)
		_ = o.Set("name", "/"+filepath.ToSlash(rel))
		stat := func() os.FileInfo {
			fi, err := os.Stat(jf.path)
			if err != nil {
				return nil
			}
			return fi
		}
		getter := func(name string, fn func() any) {
			_ = o.DefineAccessorProperty(name, vm.ToValue(func() any { return fn() }), nil, goja.FLAG_FALSE, goja.FLAG_TRUE)
		}
		getter("exists", func() any { return stat() != nil })
		getter("isFile", func() any { fi := stat(); return fi != nil && fi.Mode().IsRegular() })
		getter("isDirectory", func() any { fi := stat(); return fi != nil && fi.IsDir() })
		getter("length", func() any {
			if fi := stat(); fi != nil {
				return fi.Size()
			}
			return 0
		})
		getter("isOpen", func() any { return jf.f != nil })
		check := func(err error) {
			if err != nil {
				panic(vm.NewGoError(err))
			}
		}
		_ = o.Set("open", func(typ, mode string) bool {
			if jf.f != nil {
				return false
			}
			if a.openFiles() >= maxOpenFiles {
				panic(vm.NewGoError(errors.New("too many open files")))
			}
			flag := os.O_RDONLY
			switch mode {
			case "read", "":
			case "write":
				flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			case "append":
				flag = os.O_WRONLY | os.O_CREATE | os.O_APPEND
			case "create":
				flag = os.O_WRONLY | os.O_CREATE | os.O_EXCL
			case "readWrite":
				flag = os.O_RDWR | os.O_CREATE
			default:
				panic(vm.NewTypeError("open mode must be read, write, append, create or readWrite"))
			}
			f, err := os.OpenFile(jf.path, flag, 0o644)
			if err != nil {
				return false
			}
			jf.f, jf.r = f, bufio.NewReader(f)
			a.files = append(a.files, jf)
			return true
		})
		open := func() *os.File {
			if jf.f == nil {
				panic(vm.NewTypeError("file is not open"))
			}
			return jf.f
		}
		_ = o.Set("readAll", func() []any {
			open()
			var lines []any
			for {
				l, err := jf.r.ReadString('\n')
				if l != "" {
					lines = append(lines, strings.TrimRight(l, "\r\n"))
				}
				if err != nil {
					return lines
				}
			}
		})
		_ = o.Set("readln", func() goja.Value {
			open()
			l, err := jf.r.ReadString('\n')
			if l == "" && err != nil {
				return goja.Null()
			}
			return vm.ToValue(strings.TrimRight(l, "\r\n"))
		})
		_ = o.Set("eof", func() bool {
			open()
			_, err := jf.r.Peek(1)
			return err == io.EOF
		})
		write := func(nl bool) func(goja.FunctionCall) goja.Value {
			return func(call goja.FunctionCall) goja.Value {
				f := open()
				var b strings.Builder
				for _, v := range call.Arguments {
					b.WriteString(v.String())
					if nl {
						b.WriteString("\n")
					}
				}
				_, err := f.WriteString(b.String())
				check(err)
				return vm.ToValue(true)
			}
		}
		_ = o.Set("write", write(false))
		_ = o.Set("writeln", write(true))
		_ = o.Set("close", func() bool {
			if jf.f == nil {
				return false
			}
			err := jf.f.Close()
			jf.f, jf.r = nil, nil
			for i, x := range a.files {
				if x == jf {
					a.files = append(a.files[:i], a.files[i+1:]...)
					break
				}
			}
			check(err)
			return true
		})
		_ = o.Set("remove", func() bool {
			if jf.path == a.dir {
				return false
			}
			return os.Remove(jf.path) == nil
		})
		_ = o.Set("mkdir", func(name string) bool {
			p, err := a.resolve(filepath.Join(rel, name))
			if err != nil {
				return false
			}
			return os.MkdirAll(p, 0o755) == nil
		})
		_ = o.Set("list", func() []any {
			ents, err := os.ReadDir(jf.path)
			if err != nil {
				return nil
			}
			out := make([]any, 0, len(ents))
			for _, e := range ents {
				out = append(out, filepath.ToSlash(filepath.Join("/", rel, e.Name())))
			}
			return out
		})
		return nil
	}
	if err := vm.Set("File", ctor); err != nil {
		panic(err)
	}
}

// closeFiles closes what the script left open (instance stop).
func (a *App) closeFiles() {
	for _, f := range a.files {
		if f.f != nil {
			f.f.Close()
		}
	}
	a.files = nil
}
