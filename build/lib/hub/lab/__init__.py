"""The lab (检验科) features of the hub: specimen lifecycle and turnaround-time alerts for the
lab screen (S8), critical values, and pooled testing (S12)."""
