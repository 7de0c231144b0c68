//go:build !linux

package storage

import "errors"

var errNoTrim = errors.New("storage: mapped-file trimming needs Linux (/proc/self/maps, MADV_PAGEOUT)")

func rssFile() (int64, error) { return 0, errNoTrim }

func pageOutMappings(func(string) bool) (int64, error) { return 0, errNoTrim }
