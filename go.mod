module github.com/homing-mail/homing

go 1.26.8
