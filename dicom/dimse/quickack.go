package dimse

// quickAckEnabled switches TCP_QUICKACK off for the benchmark that measures
// what it is worth; it is never changed outside tests.
var quickAckEnabled = true
