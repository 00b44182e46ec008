"""Built-in tasks. Importing this package registers every one of them.

checksum      sha256, size and detected type of every file; duplicates.csv for the job
extract-text  text, chunks and metadata from PDF, DOCX, HTML, Markdown, TXT, JSON, CSV
statements    bank-statement CSV exports -> categorised transactions and a monthly report
command       run a command template on every file
index         documents -> chunks, vectors and metadata in a searchable collection
"""

from workers.tasks import checksum, command, extract_text, index, statements  # noqa: F401
