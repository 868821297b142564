"""The command line: ``tsam inpaint | eval | train | masks | weights`` (one module per command group).

Commands only parse options and call the pipeline functions; errors become one ``error:``
line and an exit code in :func:`tsam_cli.cli.main.main`.
"""
