"""Sample processors that honour ESA's Generic IPF contract.

Each one is an independent program (``s5p-l01b``, ``s5p-l2 NO2``, ``sky-calib``, ...)
called with the path of a Job Order XML file. It reads every input the Job Order names,
writes every output it lists (a small self-describing JSON body whose content depends
on the inputs' bytes, plus ``<output>.meta.json``) and exits with an IPF exit code:

=====  ==========================================================================
0      success
3      warning (outputs written; ``proseo_test_mode=warn``)
128    an input file named in the Job Order is missing or unreadable
129    bad invocation or unreadable/malformed Job Order
130    processing failed (``proseo_test_mode=fail``; no outputs)
131    internal error (e.g. an output could not be written)
=====  ==========================================================================

They import nothing from the rest of proseo: the Job Order is their only interface,
exactly as for the Fortran, C++ and Java processors the system runs in production.
"""
