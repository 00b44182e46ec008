"""Built-in tasks, by name and the module that registers each (imported on first use: ``submit`` of a
checksum job loads no document or statement library).

checksum      sha256, size and detected type of every file; duplicates.csv for the job
extract-text  text, chunks and metadata from PDF, DOCX, HTML, Markdown, TXT, JSON, CSV
statements    bank-statement CSV exports -> categorised transactions and a monthly report
command       run a command template on every file
index         documents -> chunks, vectors and metadata in a searchable collection
"""

BUILT_IN = {
    "checksum": "workers.tasks.checksum",
    "extract-text": "workers.tasks.extract_text",
    "statements": "workers.tasks.statements",
    "command": "workers.tasks.command",
    "index": "workers.tasks.index",
}
