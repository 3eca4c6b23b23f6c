module github.com/payperplay/node-lifecycle/bindings/go

go 1.24
